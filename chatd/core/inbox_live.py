"""The inbox's live extras on the wire: the agent's typing (a frame on the inbox's socket), the
read marks that keep unread counts on the server, and the throttle on typing relays."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatd.core.frames import TypingThrottle
from chatd.core.ids import Id
from chatd.core.jsonbody import parse_json
from chatd.core.responses import IdText, Out
from chatd.core.wire import parse_model
from chatd.errors import BadRequest

MAX_FRAME_CHARS = 1_000  # a typing frame is ~100 characters
MAX_TYPING_SESSIONS = 64  # conversations one socket keeps a typing throttle for


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TypingFrame(_Request):
    """The agent is typing (or stopped) in the composer of a conversation it holds."""

    type: Literal["typing"]
    sessionId: Id
    isTyping: bool


class ReadRequest(_Request):
    lastSeq: Annotated[int, Field(ge=0, le=2**53 - 1)]


class ReadMark(Out):
    sessionId: IdText
    lastReadSeq: int = Field(description="the seq of the last message this agent has seen")
    unread: int = Field(description="the shopper's messages after it")


def parse_inbox_frame(text: str | bytes) -> TypingFrame:
    """A frame from the inbox page; BadRequest naming what is wrong."""
    if isinstance(text, bytes) or len(text) > MAX_FRAME_CHARS:
        raise BadRequest("frames are JSON text of at most 1,000 characters", code="invalid_frame")
    value: Any = parse_json(text.encode(errors="surrogatepass"))
    return parse_model(TypingFrame, value)


class TypingGate:
    """Per conversation: a change of isTyping goes at once, the same value at most once per
    second (TypingThrottle); a socket typing in more conversations than it could forgets the
    oldest."""

    def __init__(self, interval: float = 1.0) -> None:
        self._interval = interval
        self._throttles: dict[str, TypingThrottle] = {}
        self.typing: set[str] = set()  # where the last value relayed was true

    def allow(self, session_id: str, is_typing: bool, now: float) -> bool:
        throttle = self._throttles.pop(session_id, None) or TypingThrottle(self._interval)
        self._throttles[session_id] = throttle  # the newest last
        while len(self._throttles) > MAX_TYPING_SESSIONS:
            del self._throttles[next(iter(self._throttles))]
        return throttle.allow(is_typing, now)

    def relayed(self, session_id: str, is_typing: bool) -> None:
        if is_typing:
            self.typing.add(session_id)
        else:
            self.typing.discard(session_id)
