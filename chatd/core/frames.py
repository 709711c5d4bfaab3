"""WebSocket protocol logic (PROTOCOL.md): client frames, origins, typing throttle, frame limits.

Pure: no I/O, no Trio; the clock comes in as `now` (seconds). A refused frame is a FrameError,
which the connection turns into an `error` event and keeps going; close codes are the caller's.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from chatd.core.ids import Id
from chatd.core.jsonbody import parse_json
from chatd.core.ratelimit import SlidingWindow
from chatd.core.wire import (
    MAX_SEQ,
    AttachmentIds,
    ClientId,
    Limits,
    Metadata,
    check_attachments,
    check_content,
    check_metadata,
    parse_model,
)
from chatd.errors import BadRequest


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    INVALID_DATA = 1007
    TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    JOIN_FAILED = 4001
    JOIN_REQUIRED = 4002
    JOIN_TIMEOUT = 4003
    SLOW_CONSUMER = 4008
    HEARTBEAT_TIMEOUT = 4009
    ABUSIVE = 4029


class FrameError(Exception):
    """A refused frame: becomes an `error` event {type:"error", code, message, clientMessageId?}."""

    def __init__(self, code: str, message: str, *, client_message_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_message_id = client_message_id

    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.client_message_id is not None:
            event["clientMessageId"] = self.client_message_id
        return event


# --- client frames -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Join:
    session_id: str
    token: str
    last_seq: int


@dataclass(frozen=True)
class Leave:
    pass


@dataclass(frozen=True)
class Typing:
    is_typing: bool


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class SendFrame:
    content: str
    message_type: Literal["text", "quick_reply"]
    metadata: dict[str, Any] | None
    client_message_id: str
    attachments: tuple[str, ...] = ()


ClientFrame = Join | Leave | Typing | Ping | SendFrame

SessionId = Id  # canonical lowercase after parsing, so it compares equal to the joined id


class _Frame(BaseModel):
    # Same strictness as the REST bodies: unknown fields refused, no type coercion (bool is no int).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _JoinChat(_Frame):
    sessionId: SessionId
    sessionToken: Annotated[str, Field(min_length=1, max_length=512)]
    lastSeq: Annotated[int, Field(ge=0, le=MAX_SEQ)] = 0


class _SendMessage(_Frame):
    content: str
    messageType: Literal["text", "quick_reply"] = "text"
    metadata: Metadata | None = None
    clientMessageId: ClientId
    attachments: AttachmentIds | None = None


class _Typing(_Frame):
    isTyping: bool
    sessionId: SessionId | None = None


class _LeaveChat(_Frame):
    sessionId: SessionId | None = None


class _Ping(_Frame):
    pass


_MODELS: dict[str, type[_Frame]] = {
    "join_chat": _JoinChat,
    "send_message": _SendMessage,
    "typing": _Typing,
    "leave_chat": _LeaveChat,
    "ping": _Ping,
}
_CLIENT_ID: TypeAdapter[str] = TypeAdapter(ClientId)


def parse_frame(data: str | bytes, *, limits: Limits, joined: str | None) -> ClientFrame:
    """One text frame as a client frame; `joined` is the joined session id, None before join."""
    if not isinstance(data, str):
        raise FrameError("invalid_frame", "binary frames are not accepted; send JSON text")
    try:
        # surrogatepass: a lone surrogate reaches parse_json as bytes it refuses, not a crash here.
        value = parse_json(data.encode("utf-8", errors="surrogatepass"))
    except BadRequest as exc:
        where = f" (at {exc.field})" if exc.field else ""
        if exc.code == "invalid_characters":  # well-formed JSON holding text we cannot store
            raise FrameError(
                exc.code, exc.message + where, client_message_id=_send_client_id(data)
            ) from None
        raise FrameError("invalid_json", exc.message + where) from None
    if not isinstance(value, dict):
        raise FrameError("invalid_frame", "a frame must be a JSON object")
    if "type" not in value:
        raise FrameError("invalid_frame", "type is required")
    kind = value["type"]
    if not isinstance(kind, str):
        raise FrameError("invalid_frame", "type must be a string")
    if joined is None and kind != "join_chat":
        raise FrameError("join_required", "join_chat must be the first frame")
    model = _MODELS.get(kind)
    if model is None:
        # The client's value is not echoed: it may be long or hostile.
        raise FrameError("invalid_frame", f"type must be one of {', '.join(_MODELS)}")
    if kind == "join_chat" and joined is not None:
        raise FrameError("invalid_frame", "already joined")

    # Echo the id on every refusal of a send, so the client can match it to its pending message.
    client_id = _client_id(value.get("clientMessageId")) if kind == "send_message" else None
    fields = {key: item for key, item in value.items() if key != "type"}
    try:
        body = parse_model(model, fields)
    except BadRequest as exc:
        raise FrameError(
            "invalid_frame", _field_message(kind, exc), client_message_id=client_id
        ) from None

    match body:
        case _JoinChat():
            return Join(body.sessionId, body.sessionToken, body.lastSeq)
        case _SendMessage():
            try:
                files = check_attachments(body.attachments, limits)
                content = check_content(body.content, limits, with_attachments=bool(files))
                metadata = check_metadata(body.metadata, limits)
            except BadRequest as exc:
                raise FrameError(exc.code, exc.message, client_message_id=client_id) from None
            return SendFrame(content, body.messageType, metadata, body.clientMessageId, files)
        case _Typing():
            _check_session(body.sessionId, joined)
            return Typing(body.isTyping)
        case _LeaveChat():
            _check_session(body.sessionId, joined)
            return Leave()
        case _:
            return Ping()


def _send_client_id(data: str) -> str | None:
    """The clientMessageId of a send_message refused for its characters (NUL, lone surrogates)."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict) and value.get("type") == "send_message":
        return _client_id(value.get("clientMessageId"))
    return None


def _field_message(kind: str, exc: BadRequest) -> str:
    """parse_model's message, with the field named as `<type>.<field>`."""
    if exc.field is None:
        return f"{kind}: {exc.message}"
    if exc.code == "unknown_field":
        return f"unknown field {kind}.{exc.field}"
    return f"{kind}.{exc.message}"  # "sessionId is required" / "lastSeq: Input should be ..."


def _client_id(value: Any) -> str | None:
    """The frame's clientMessageId if it is a valid one (safe to echo back), else None."""
    try:
        return _CLIENT_ID.validate_python(value, strict=True)
    except ValidationError:
        return None


def _check_session(session_id: str | None, joined: str | None) -> None:
    if session_id is not None and session_id != joined:
        raise FrameError("invalid_frame", "sessionId is not the joined session")


# --- origins -----------------------------------------------------------------------------------

# Written out rather than urllib.parse, which accepts userinfo, paths and odd ports leniently.
_ORIGIN = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._\-]+)"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.ASCII,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str | None:
    """ "scheme://host[:port]" with scheme and host lower-cased and the default port dropped.

    None for anything else: "null", other schemes, userinfo, a path (even "/"), query, fragment.
    """
    match = _ORIGIN.fullmatch(value)
    if match is None:
        return None
    scheme = match["scheme"].lower()
    default_port = _DEFAULT_PORTS.get(scheme)
    if default_port is None:
        return None
    host = match["host"].lower()
    if host.startswith("["):
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            return None
    elif not host.strip("."):
        return None
    port = match["port"]
    if port is None:
        return f"{scheme}://{host}"
    number = int(port)
    if not 1 <= number <= 65535:
        return None
    return f"{scheme}://{host}" if number == default_port else f"{scheme}://{host}:{number}"


def origin_allowed(origin: str | None, allowed: Collection[str]) -> bool:
    """Exact scheme, host and port match against the allow-list, both sides normalized."""
    if not origin:
        return False
    normalized = normalize_origin(origin)
    if normalized is None:
        return False
    return any(normalize_origin(entry) == normalized for entry in allowed)


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def loopback_spellings(origin: str) -> tuple[str, ...]:
    """A loopback origin under each name a browser may use for it (localhost, 127.0.0.1, [::1]),
    same scheme and port; any other origin as it is. () for what is not an origin."""
    normalized = normalize_origin(origin)
    if normalized is None:
        return ()
    match = _ORIGIN.fullmatch(normalized)
    assert match is not None
    host = match["host"]
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a name other than localhost
        loopback = False
    if not loopback:
        return (normalized,)
    port = f":{match['port']}" if match["port"] else ""
    spellings = (f"{match['scheme']}://{name}{port}" for name in LOOPBACK_HOSTS)
    return tuple(dict.fromkeys((normalized, *spellings)))


# --- per-connection limits ---------------------------------------------------------------------


class TypingThrottle:
    """Relays a change of isTyping at once; the same value again at most once per `interval` seconds."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last: bool | None = None
        self._at = float("-inf")

    def allow(self, is_typing: bool, now: float) -> bool:
        if is_typing == self._last and now - self._at < self.interval:
            return False
        self._last = is_typing
        self._at = now
        return True


class FrameMeter:
    """Per-connection frame limits: at most `per_second` frames in any 1 s (a sliding window).

    `abusive` once `max_refused_in_row` refused frames come in a row, or more than 5x
    `per_second` frames arrive within 1 s. admit() does not count a rate-limited frame as
    refused: the caller calls refused() for it, and accepted() for a frame handled fine.
    """

    FLOOD_FACTOR = 5

    def __init__(self, per_second: float, max_refused_in_row: int = 10) -> None:
        # A fractional rate is rounded down, but one frame per second always gets through.
        self._rate = SlidingWindow(max(1, math.floor(per_second)), 1.0)
        # Every arrival, admitted or not; it records at most its limit, so memory stays bounded.
        self._arrivals = SlidingWindow(max(1, math.floor(per_second * self.FLOOD_FACTOR)), 1.0)
        self.max_refused_in_row = max_refused_in_row
        self._refused_in_row = 0
        self._flooded = False

    def admit(self, now: float) -> float | None:
        """None: the frame is accepted; else the seconds until one would be."""
        if self._arrivals.retry_after(now) is None:
            self._arrivals.record(now)
        else:
            self._flooded = True  # sticky: the caller closes the connection with 4029
        wait = self._rate.retry_after(now)
        if wait is None:
            self._rate.record(now)
        return wait

    def refused(self) -> None:
        self._refused_in_row += 1

    def accepted(self) -> None:
        self._refused_in_row = 0

    @property
    def abusive(self) -> bool:
        return self._flooded or self._refused_in_row >= self.max_refused_in_row


def encode_event(event: Mapping[str, Any]) -> str:
    """Compact JSON for a text frame; NaN/Infinity raise rather than go out as invalid JSON."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
