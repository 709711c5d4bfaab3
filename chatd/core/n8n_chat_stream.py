"""One sendMessage's reply as the NDJSON lines @n8n/chat reads with enableStreaming, made from
the session's events: pure (the HTTP body in routes_n8n_chat.py feeds it).

The widget shows each run (begin ... item* ... end, keyed by nodeId and runIndex) as one bubble
and appends items as they come. A reply n8n streams arrives as message_delta pieces (or a
message_stream snapshot, the text so far), then as the stored message; a reply that does not
stream arrives only stored, and is one item. A streamed attempt that is withdrawn (failed,
superseded) cannot be taken back from the widget: its run is ended, and what follows (a retry,
the fallback) is a new run, a new bubble.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chatd.core.messages import Message
from chatd.core.n8n_chat import StreamKind, answers, reply_text, stream_line


class ReplyLines:
    def __init__(self, reply_to: str) -> None:
        self._reply_to = reply_to  # the shopper's message this request waits on
        self._run = 0  # runIndex of the widget's bubble
        self._streaming: str | None = None  # id of the streamed reply shown in the open run
        self._index = -1  # its last piece given
        self._sent = ""  # its text given so far
        self.done = False  # the reply is complete: end the response

    def on_event(self, data: Mapping[str, Any], message: Message | None) -> bytes:
        """The lines an event of the session adds (often none)."""
        kind = data.get("type")
        if message is not None:
            return self._stored(message) if answers(message, self._reply_to) else b""
        if kind in ("message_delta", "message_stream") and data.get("replyTo") == self._reply_to:
            return self._piece(str(data["messageId"]), int(data["index"]), str(data["text"]), kind)
        if kind == "message_stream_end" and data.get("messageId") == self._streaming:
            return self._close()
        return b""

    def timed_out(self, note: str) -> bytes:
        """The wait is over: the note as a bubble of its own."""
        self.done = True
        return self._close() + self._whole(note)

    def _piece(self, message_id: str, index: int, text: str, kind: str) -> bytes:
        out = b""
        if message_id != self._streaming:  # a new attempt's stream: a new bubble
            out += self._close()
            self._streaming, self._index, self._sent = message_id, -1, ""
            out += self._line("begin")
        if kind == "message_stream":  # the whole text so far: give what is new of it
            if index <= self._index or not text.startswith(self._sent):
                return out
            text = text[len(self._sent) :]
        elif index != self._index + 1:
            return out
        self._index, self._sent = index, self._sent + text
        return out + (self._line("item", text) if text else b"")

    def _stored(self, message: Message) -> bytes:
        """The reply, stored: the rest of a streamed one, or the whole of any other."""
        self.done = True
        text = reply_text(message.content, message.metadata)
        if message.id == self._streaming and text.startswith(self._sent):
            rest = text[len(self._sent) :]
            return (self._line("item", rest) if rest else b"") + self._close()
        return self._close() + self._whole(text)

    def _whole(self, text: str) -> bytes:
        out = self._line("begin") + self._line("item", text) + self._line("end")
        self._run += 1
        return out

    def _close(self) -> bytes:
        if self._streaming is None:
            return b""
        out = self._line("end")
        self._streaming, self._run = None, self._run + 1
        return out

    def _line(self, kind: StreamKind, content: str | None = None) -> bytes:
        return stream_line(kind, content, run=self._run)
