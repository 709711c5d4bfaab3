"""What n8n answers (the synchronous response body) and calls back with, turned into one BotReply.

Tolerant of what n8n adds around a reply, strict about what reaches a shopper's screen.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from chatd.core.ids import Id
from chatd.core.jsonbody import check_value, parse_json
from chatd.errors import BadRequest

ReplyType = Literal["text", "quick_reply", "rich_content"]
MAX_ITEMS = 10
MAX_QUICK_REPLY = 200
MAX_URL = 2048
# The stored metadata (n8n's own object and actions included) stays a small JSON document.
MAX_METADATA_BYTES = 32 * 1024
_SAFE_SCHEMES = frozenset({"http", "https"})
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class BotReply:
    content: str
    message_type: ReplyType
    metadata: dict[str, Any]
    # A `{"type": "handoff", "reason": ...}` action: the bot asks for a person (its reason,
    # possibly ""); None: it does not.
    handoff: str | None = None


@dataclass(frozen=True)
class Callback:
    session_id: str
    reply_to: str | None
    reply: BotReply


class InvalidReply(Exception):
    """n8n's answer cannot be shown; `reason` says why in a few words, `field` where."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class _Model(BaseModel):
    # n8n adds keys of its own around and inside a reply; ignoring them is safe because nothing
    # unknown is stored or shown.
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in _SAFE_SCHEMES or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise ValueError("must not contain whitespace or control characters")
    return url


SafeUrl = Annotated[str, Field(min_length=1, max_length=MAX_URL), AfterValidator(_safe_url)]


class _Attachment(_Model):
    type: Literal["image", "file", "link"]
    url: SafeUrl
    title: Annotated[str, Field(max_length=MAX_QUICK_REPLY)] | None = None


class _Action(_Model):
    # "handoff": the bot asks for a person, the conversation waits for an agent (docs/inbox.md);
    # its `reason` is shown to the staff. "tag": payload.tags label the conversation for
    # staff; the database takes such actions (and metadata.tags) out of the reply as it stores it
    # (sql/migrations/0009_insights.sql).
    type: Literal["redirect", "open_modal", "trigger_event", "handoff", "tag"]
    payload: dict[str, Any] = Field(default_factory=dict)
    reason: Annotated[str, Field(max_length=MAX_QUICK_REPLY)] | None = None

    @field_validator("payload")
    @classmethod
    def _payload_url(cls, payload: dict[str, Any]) -> dict[str, Any]:
        # The widget follows a redirect's URL: the same safe schemes as links.
        url = payload.get("url")
        if url is not None and (not isinstance(url, str) or len(url) > MAX_URL):
            raise ValueError("url must be a string of at most 2048 characters")
        if url is not None:
            _safe_url(url)
        return payload


QuickReply = Annotated[str, Field(min_length=1, max_length=MAX_QUICK_REPLY)]


class _Response(_Model):
    content: str
    type: ReplyType | None = None
    quickReplies: Annotated[list[QuickReply], Field(max_length=MAX_ITEMS)] | None = None
    attachments: Annotated[list[_Attachment], Field(max_length=MAX_ITEMS)] | None = None


class _Envelope(_Model):
    response: Any = None  # an object or a plain string: told apart in _from_envelope
    responseType: ReplyType | None = None
    metadata: dict[str, Any] | None = None
    actions: Annotated[list[_Action], Field(max_length=MAX_ITEMS)] | None = None


class CallbackRequest(_Envelope):
    # Our own endpoint: unknown top-level keys are refused by name, as for every chatd request.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    sessionId: Id
    replyTo: Id | None = None
    response: Any
    signature: Any = None  # the guide's in-body signature: ignored, the headers are verified


def parse_reply_body(
    body: bytes, *, mode: Literal["webhook", "chat_trigger"], max_content: int = 4000
) -> BotReply | None:
    """n8n's synchronous answer: a BotReply, None for a bare acknowledgement, or InvalidReply.

    Replies are {"response": ...} (the guide's forms), {"output": "..."} (AI agent, Chat
    Trigger) and, in chat_trigger mode only, {"text": "..."} (what n8n's own chat widget also
    reads); a JSON array stands for its first item.
    """
    stripped = body.strip()
    if not stripped:
        return None
    # Cheap first look, so a large HTML error page is refused without decoding all of it.
    if stripped[:1] not in (b"{", b"["):
        raise InvalidReply("body is not a JSON object or array")
    try:
        value = parse_json(stripped)
    except BadRequest as exc:
        raise InvalidReply(f"body is not valid JSON: {exc.message}", exc.field) from None
    if isinstance(value, list):
        if not value:
            return None
        value = value[0]
    if not isinstance(value, dict):
        raise InvalidReply("reply is not a JSON object")
    if "response" in value:
        return _from_envelope(_validate(_Envelope, value), max_content)
    text_keys = ("output", "text") if mode == "chat_trigger" else ("output",)
    for key in text_keys:
        if key in value:
            text = value[key]
            if not isinstance(text, str):
                raise InvalidReply(f"{key} must be a string", key)
            return BotReply(_check_content(text, max_content, key), "text", {})
    # {"message": "Workflow was started"}, {"ok": true}, {} ...: accepted, the reply may follow
    # as a callback.
    return None


def parse_callback(value: Any, *, max_content: int = 4000) -> Callback:
    """The JSON body of POST /api/chat/webhook; BadRequest "invalid_callback" naming the field."""
    try:
        if not isinstance(value, dict):
            raise InvalidReply("callback body must be a JSON object")
        try:
            check_value(value, "", 0)
        except BadRequest as exc:
            raise InvalidReply(exc.message, exc.field) from None
        envelope = _validate(CallbackRequest, value)
        reply = _from_envelope(envelope, max_content)
    except InvalidReply as exc:
        raise BadRequest(exc.reason, code="invalid_callback", field=exc.field) from None
    return Callback(session_id=envelope.sessionId, reply_to=envelope.replyTo, reply=reply)


def reply_key(reply_to: str | None, reply: BotReply) -> str:
    """Idempotency key: the same reply to the same message, by sync response or callback alike.

    Unique per session at most: with reply_to None, equal replies anywhere in a session collide.
    """
    canonical = json.dumps(
        [reply_to, reply.message_type, reply.content, reply.metadata],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8", errors="surrogatepass")).hexdigest()


def _validate(model: type[M], value: dict[str, Any], prefix: tuple[str, ...] = ()) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in (*prefix, *first["loc"])) or None
        if first["type"] == "extra_forbidden":
            raise InvalidReply(f"unknown field {field!r}", field) from None
        if first["type"] == "missing":
            raise InvalidReply(f"{field} is required", field) from None
        raise InvalidReply(f"{field}: {first['msg']}", field) from None


def _from_envelope(envelope: _Envelope, max_content: int) -> BotReply:
    raw = envelope.response
    if isinstance(raw, str):
        # The guide's WebhookRequest form: plain text, the type alongside.
        content = _check_content(raw, max_content, "response")
        declared, quick, attachments = envelope.responseType, None, None
    elif isinstance(raw, dict):
        response = _validate(_Response, raw, ("response",))
        content = _check_content(response.content, max_content, "response.content")
        declared = response.type or envelope.responseType
        quick, attachments = response.quickReplies, response.attachments
    else:
        raise InvalidReply("response must be an object or a string", "response")
    metadata: dict[str, Any] = {}
    if quick:
        for index, label in enumerate(quick):
            if not label.strip():
                raise InvalidReply("a quick reply is blank", f"response.quickReplies.{index}")
        metadata["quickReplies"] = list(quick)
    if attachments:
        metadata["attachments"] = [a.model_dump(exclude_none=True) for a in attachments]
    handoff = None
    if envelope.actions:
        metadata["actions"] = [a.model_dump(exclude_none=True) for a in envelope.actions]
        handoffs = [a.reason or "" for a in envelope.actions if a.type == "handoff"]
        handoff = handoffs[0] if handoffs else None
    if envelope.metadata is not None:
        metadata["n8n"] = envelope.metadata
    _check_metadata_size(metadata)
    return BotReply(content, declared or _default_type(metadata), metadata, handoff)


def _default_type(metadata: dict[str, Any]) -> ReplyType:
    if "quickReplies" in metadata:
        return "quick_reply"
    if "attachments" in metadata:
        return "rich_content"
    return "text"


def _check_content(content: str, max_content: int, field: str) -> str:
    if not content.strip():
        raise InvalidReply("reply content is empty", field)
    if len(content) > max_content:
        raise InvalidReply(f"reply content is longer than {max_content} characters", field)
    return content


def _check_metadata_size(metadata: dict[str, Any]) -> None:
    size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidReply(f"reply metadata is larger than {MAX_METADATA_BYTES} bytes", "metadata")
