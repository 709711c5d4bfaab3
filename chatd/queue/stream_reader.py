"""One delivery attempt's streamed reply: parsed as it arrives, each piece shown at once.

Each run of the stream (chatd/core/n8n_stream.py) is one bot message, named before its first
piece is shown (the stored message keeps that id, so it takes its streamed text's place). An
attempt is all or nothing: if it fails, everything it showed is withdrawn and nothing of it is
stored, so a retry's different wording is never shown beside an earlier one.
"""

from __future__ import annotations

import hashlib

from chatd.core.messages import StreamedPart
from chatd.core.n8n_stream import Began, Piece, StreamFailed, StreamParser
from chatd.core.replies import BotReply, reply_key
from chatd.core.tokens import new_id
from chatd.db.queue import Job
from chatd.realtime.relay import StreamRelay


class StreamReader:
    """The consumer the sender feeds (chatd/queue/sender.py StreamConsumer)."""

    def __init__(
        self, job: Job, relay: StreamRelay, *, max_reply_length: int, max_line_bytes: int
    ) -> None:
        self._job = job
        self._relay = relay
        self._parser = StreamParser(
            max_reply_length=max_reply_length, max_line_bytes=max_line_bytes
        )
        self._ids: list[str] = []  # the message id of each run, in the order they began
        self._shown: dict[str, None] = {}  # runs with pieces shown (ordered): to withdraw
        self.attempt = new_id()  # tells this attempt's streams from a later one's
        self.failure: str | None = None
        self.pieces = 0
        self.open = False  # the answer is being read as a stream may be: long

    def opened(self) -> None:
        self.open = True

    @property
    def shown(self) -> bool:
        return bool(self._shown)

    def feed(self, data: bytes) -> bool:
        try:
            events = self._parser.feed(data)
        except StreamFailed as exc:
            self.failure = exc.reason
            return False
        self._publish(events)
        return True

    def _publish(self, events: list[Began | Piece]) -> None:
        job = self._job
        for event in events:
            if isinstance(event, Began):
                self._ids.append(new_id())
                continue
            message_id = self._ids[event.run]
            self._shown[message_id] = None
            self.pieces += 1
            self._relay.pieces(
                job.session_id,
                message_id,
                job.message_id,
                self.attempt,
                event.index,
                [event.text],
            )

    def finish(self, stream_error: str | None) -> list[StreamedPart]:
        """How the read ended (`stream_error` None: cleanly): the messages to store, in order,
        or StreamFailed. Runs with only whitespace are withdrawn here, and never stored."""
        if self.failure is not None:
            raise StreamFailed(self.failure)
        if stream_error is not None:
            raise StreamFailed(stream_error)
        try:
            self._publish(self._parser.close())
            runs = self._parser.result()
        except StreamFailed as exc:
            self.failure = exc.reason
            raise
        parts: list[StreamedPart] = []
        keys: set[str] = set()
        for message_id, run in zip(self._ids, runs, strict=True):
            text = run.text
            if not text.strip():
                self._withdraw(message_id, "empty")
                continue
            # The key a whole reply with this text would have: the same reply once, however
            # it came; a run repeating an earlier run's text gets a key of its own.
            key = reply_key(self._job.message_id, BotReply(text, "text", {}))
            while key in keys:
                key = hashlib.sha256(f"{key}:again".encode()).hexdigest()
            keys.add(key)
            parts.append(StreamedPart(message_id, text, key))
        return parts

    def withdraw(self, reason: str) -> None:
        """Everything this attempt showed is shown no more (it failed, or will not be stored)."""
        for message_id in list(self._shown):
            self._withdraw(message_id, reason)

    def _withdraw(self, message_id: str, reason: str) -> None:
        if message_id in self._shown:
            del self._shown[message_id]
            self._relay.end(self._job.session_id, message_id, reason)

    def stored(self, parts: list[StreamedPart]) -> None:
        """These runs are stored: their new_message replaced their streamed text."""
        for part in parts:
            self._shown.pop(part.message_id, None)
