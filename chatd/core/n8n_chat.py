"""n8n's own chat widget (@n8n/chat 1.x) spoken toward the browser: its requests, its answers.

The widget POSTs (or GETs, with webhookConfig.method 'GET') {action, sessionId, chatInput,
metadata?} and reads {output} (or, with enableStreaming, NDJSON begin/item/end lines) and, for
loadPreviousSession, {data: [...]} in LangChain's message shape. Its sessionId is a UUID it
invents: the bearer secret of the session, kept here only as a hash in its own id space.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatd.core.attachments import MessageFile
from chatd.core.ids import ID_PATTERN, is_id
from chatd.core.jsonbody import parse_json
from chatd.core.messages import Message
from chatd.core.responses import Out
from chatd.core.wire import Limits, check_metadata, parse_model
from chatd.errors import BadRequest

Action = Literal["sendMessage", "loadPreviousSession"]
StreamKind = Literal["begin", "item", "end"]
KEY_PREFIX = "n8n-chat:"  # the widget's ids hash apart from every chatd session token
MAX_QUERY_BYTES = 8192  # a GET's query string: a chat message with room to spare
STILL_STREAMING = "…"  # ends a reply loadPreviousSession shows while it still streams
NODE_ID = "chatd"  # the stream's one "node": the widget groups a stream's items by node
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>])")


class N8nChatRequest(BaseModel):
    """What @n8n/chat sends (its chatInputKey and chatSessionKey left at their defaults)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    action: Action
    sessionId: Annotated[
        str,
        Field(
            max_length=36,
            json_schema_extra={"format": "uuid", "pattern": ID_PATTERN},
            description="The widget's own random UUID (localStorage): the session's secret.",
        ),
    ]
    chatInput: Annotated[str, Field(description="The shopper's message (sendMessage)")] | None = (
        None
    )
    metadata: dict[str, Any] | None = None


class N8nChatFormBody(BaseModel):
    """The same as a multipart/form-data form, as the widget sends it with allowFileUploads:
    the fields first, then a part named `files` per file. Read as a stream by
    chatd/files/n8n_chat_form.py; this model describes it for the document."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    action: Literal["sendMessage"]
    sessionId: Annotated[str, Field(max_length=36, json_schema_extra={"pattern": ID_PATTERN})]
    chatInput: Annotated[str, Field(description="may be empty when files come with it")] | None = (
        None
    )
    metadata: str | None = Field(None, description="JSON text of an object")
    files: list[Annotated[bytes, Field(json_schema_extra={"format": "binary"})]] = Field(
        default_factory=list,
        description="at most attachments.max_files_per_message, each stored as an attachment",
    )


class N8nChatQuery(BaseModel):
    """The same fields as a GET's query (webhookConfig.method 'GET')."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    action: Action
    sessionId: Annotated[str, Field(max_length=36, json_schema_extra={"pattern": ID_PATTERN})]
    chatInput: str | None = None
    metadata: str | None = Field(None, description="JSON text of an object; other text ignored")


class HistoryKwargs(Out):
    content: str
    additional_kwargs: dict[str, Any]
    response_metadata: dict[str, Any]


class HistoryEntry(Out):
    """One message as n8n's chat memory gives it (a serialized LangChain message)."""

    lc: Literal[1]
    type: Literal["constructor"]
    id: list[str] = Field(description="ends with HumanMessage (the shopper) or AIMessage")
    kwargs: HistoryKwargs


class N8nChatAnswer(Out):
    """sendMessage: `output`, the bot's reply as markdown text (the widget renders it);
    loadPreviousSession: `data`, the session's messages, oldest first."""

    output: str | None = None
    data: list[HistoryEntry] | None = None


@dataclass(frozen=True)
class WidgetRequest:
    action: Action
    session_id: str  # the widget's UUID, lowercase
    chat_input: str | None  # checked for sendMessage; None for loadPreviousSession
    metadata: dict[str, Any] | None


def session_key(widget_session_id: str) -> bytes:
    """What chatd stores for a widget's sessionId (also the session's token hash)."""
    return hashlib.sha256((KEY_PREFIX + widget_session_id.lower()).encode()).digest()


def parse_body(value: Any, limits: Limits, *, with_files: bool = False) -> WidgetRequest:
    """A JSON (or multipart form) body: 400 naming the field otherwise. `with_files`: the
    form carries files, so chatInput may be empty (as chatd's own send allows)."""
    body = parse_model(N8nChatRequest, value)
    if with_files and body.action != "sendMessage":
        raise BadRequest("files come only with sendMessage", code="invalid_form", field="files")
    return _checked(
        body.action, body.sessionId, body.chatInput, body.metadata, limits, with_files=with_files
    )


def parse_query_args(args: Mapping[str, str], query_bytes: int, limits: Limits) -> WidgetRequest:
    """A GET's query: the widget sends metadata as text ('[object Object]' for an object)."""
    if query_bytes > MAX_QUERY_BYTES:
        raise BadRequest(f"the query is longer than {MAX_QUERY_BYTES} bytes", code="query_too_long")
    query = parse_model(N8nChatQuery, dict(args))
    return _checked(
        query.action, query.sessionId, query.chatInput, _metadata_text(query.metadata), limits
    )


def form_fields(form: Mapping[str, str]) -> dict[str, Any]:
    """A multipart form's fields as a JSON body would carry them (metadata is JSON text)."""
    fields: dict[str, Any] = dict(form)
    if "metadata" in fields:
        fields["metadata"] = _metadata_text(fields["metadata"])
    return fields


def _metadata_text(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = parse_json(text.encode())
    except BadRequest:
        return None  # not JSON (a GET's '[object Object]'): nothing the bot could read
    return value if isinstance(value, dict) else None


def _checked(
    action: Action,
    session_id: str,
    chat_input: str | None,
    metadata: dict[str, Any] | None,
    limits: Limits,
    *,
    with_files: bool = False,
) -> WidgetRequest:
    if not is_id(session_id):
        raise BadRequest(
            "sessionId must be a UUID (the widget makes one)",
            code="invalid_session_id",
            field="sessionId",
        )
    if action == "sendMessage":
        chat_input = _checked_input(chat_input, limits, with_files=with_files)
    return WidgetRequest(action, session_id.lower(), chat_input, check_metadata(metadata, limits))


def _checked_input(chat_input: str | None, limits: Limits, *, with_files: bool) -> str:
    if chat_input is None and with_files:
        return ""
    if chat_input is None:
        raise BadRequest("chatInput is required", code="missing_field", field="chatInput")
    if not chat_input.strip() and not with_files:
        raise BadRequest("chatInput is empty", code="empty_content", field="chatInput")
    if len(chat_input) > limits.max_message_length:
        raise BadRequest(
            f"chatInput is longer than {limits.max_message_length} characters",
            code="content_too_long",
            field="chatInput",
        )
    return chat_input


def answers(message: Message, sent_id: str) -> bool:
    """Whether `message` is the reply a request that sent `sent_id` waits for: the bot's (or
    chatd's fallback) reply to that very message, not to another request's message of the same
    session; or a message answering none in particular (an agent's, a callback without
    replyTo), which any waiting request may show."""
    return message.sender_type != "user" and message.reply_to in (sent_id, None)


def reply_text(
    content: str, metadata: Mapping[str, Any] | None, files: Sequence[MessageFile] = ()
) -> str:
    """A message as the widget can show it: markdown text. Quick replies become a list (the
    widget has no buttons chatd can drive), attachments (a bot's links, a shopper's uploaded
    files) become links or images."""
    parts = [content] if content else []
    extra = metadata or {}
    quick = [q for q in extra.get("quickReplies") or () if isinstance(q, str)]
    if quick:
        parts.append("\n".join(f"- {_escape(label)}" for label in quick))
    described = [a for a in extra.get("attachments") or () if isinstance(a, dict)]
    described += [{"url": f.url, "title": f.name, "type": f.kind} for f in files]
    links = [_attachment(a) for a in described]
    if any(links):
        parts.append("\n".join(f"- {link}" for link in links if link))
    return "\n\n".join(parts)


def streaming_text(text_so_far: str) -> str:
    """A reply still streaming, as loadPreviousSession shows it: the text so far, marked as
    unfinished (the widget does not ask again; the whole reply is there at the next load)."""
    text = text_so_far.rstrip()
    return f"{text} {STILL_STREAMING}" if text else STILL_STREAMING


def _attachment(attachment: Mapping[str, Any]) -> str:
    url, title = attachment.get("url"), attachment.get("title")
    if not isinstance(url, str):
        return ""
    label = _escape(title if isinstance(title, str) and title else url)
    target = url.replace("(", "%28").replace(")", "%29").replace(" ", "%20")
    image = "!" if attachment.get("type") == "image" and url.startswith("https://") else ""
    return f"{image}[{label}]({target})"


def _escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def history_entry(sender_type: str, text: str) -> HistoryEntry:
    """The shopper's messages are HumanMessage, the bot's and chatd's own AIMessage."""
    kind = "HumanMessage" if sender_type == "user" else "AIMessage"
    return HistoryEntry(
        lc=1,
        type="constructor",
        id=["langchain_core", "messages", kind],
        kwargs=HistoryKwargs(content=text, additional_kwargs={}, response_metadata={}),
    )


def stream_line(kind: StreamKind, content: str | None = None, *, run: int = 0) -> bytes:
    """One line of the NDJSON stream the widget reads with enableStreaming; `run` is the
    widget's runIndex: each run is a bubble of its own."""
    line: dict[str, Any] = {"type": kind, "metadata": {"nodeId": NODE_ID, "runIndex": run}}
    if content is not None:
        line["content"] = content
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
