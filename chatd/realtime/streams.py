"""The replies streaming now, as this process has heard of them: each one's text so far.

A streamed reply's pieces are events, not rows (DESIGN.md): the finished reply is stored once,
its pieces never. A client that joins or resumes mid-stream needs the text so far, and it may be
connected to another process than the one reading n8n's stream, whose memory it cannot reach
(DESIGN.md has it in the actor's memory; that works for one process only). So every process
keeps this small table for the streams it reads and those it is notified of, and hands a joining
client a snapshot of each. An entry goes when its reply is stored (the new_message with its id),
when it is withdrawn (message_stream_end), when a later attempt at the same message starts
streaming, or at the latest `ttl` seconds after it began (its reader died).

While an agent holds a conversation, no bot reply is shown (DESIGN.md): taking it over holds its
streams here, in every process (a notification), withdrawing those under way and ignoring any
that begins before the hand-back releases it (a job n8n had before the takeover may still
answer); a hold lasts at most `ttl`, as long as such a stream could.

Pieces of a stream read elsewhere come in batches by notification, and a notification can be
lost: a stream that skips pieces is kept as incomplete, and no snapshot is given of it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

MAX_VERSION = (1 << 53) - 1  # a whole number JavaScript holds exactly


@dataclass(slots=True)
class LiveStream:
    session_id: str
    message_id: str
    reply_to: str | None
    attempt: str  # one delivery attempt's streams share it; a later attempt's replace them
    local: bool  # read by this process (its pieces never miss)
    expires_at: float
    parts: list[str] = field(default_factory=list)
    next_index: int = 0  # of the next piece expected
    complete: bool = True  # False: pieces were missed; no snapshot can be given

    @property
    def index(self) -> int:
        return self.next_index - 1

    def view(self) -> dict[str, Any]:
        """The long-poll's entry for it: the whole text so far."""
        return {
            "messageId": self.message_id,
            "replyTo": self.reply_to,
            "index": self.index,
            "text": "".join(self.parts),
        }


def delta_event(stream: LiveStream, index: int, text: str) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "sessionId": stream.session_id,
        "messageId": stream.message_id,
        "replyTo": stream.reply_to,
        "index": index,
        "text": text,
    }


def snapshot_event(stream: LiveStream) -> dict[str, Any]:
    return {"type": "message_stream", "sessionId": stream.session_id, **stream.view()}


def end_event(session_id: str, message_id: str, reason: str) -> dict[str, Any]:
    return {
        "type": "message_stream_end",
        "sessionId": session_id,
        "messageId": message_id,
        "reason": reason,
    }


class LiveStreams:
    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._by_id: dict[str, LiveStream] = {}
        self._by_session: dict[str, dict[str, LiveStream]] = {}  # in the order streams began
        # Streams withdrawn or replaced, until their time is up: pieces of them still on their
        # way (their reader has not noticed yet) must not bring them back.
        self._gone: dict[str, float] = {}
        self._held: dict[str, float] = {}  # sessions an agent holds: until when streams are shut

    def __len__(self) -> int:
        return len(self._by_id)

    def pieces(
        self,
        session_id: str,
        message_id: str,
        reply_to: str | None,
        attempt: str,
        index: int,
        texts: list[str],
        *,
        local: bool,
        now: float,
    ) -> list[dict[str, Any]]:
        """Pieces `index`, `index` + 1, ... of a stream: the events for this process's clients
        (the pieces that extend its text; first the end of any stream they replace)."""
        events: list[dict[str, Any]] = []
        if message_id in self._gone:
            return events
        stream = self._by_id.get(message_id)
        if stream is None and self._held.get(session_id, -1.0) > now:
            self._gone[message_id] = now + self._ttl  # begun while an agent holds it: not shown
            return events
        if stream is None:
            if index == 0:  # a new attempt's first piece: an earlier attempt's are moot
                events.extend(self._supersede(session_id, reply_to, attempt, now))
            stream = LiveStream(session_id, message_id, reply_to, attempt, local, now + self._ttl)
            self._by_id[message_id] = stream
            self._by_session.setdefault(session_id, {})[message_id] = stream
            if index > 0:  # its first pieces were missed here
                stream.complete = False
        elif index > stream.next_index:
            stream.complete = False
        if not stream.complete:
            stream.parts.clear()  # of no use to anyone now: free it
            stream.next_index = max(stream.next_index, index + len(texts))
            return events
        for offset, text in enumerate(texts):
            at = index + offset
            if at < stream.next_index:
                continue  # heard twice
            stream.parts.append(text)
            stream.next_index = at + 1
            events.append(delta_event(stream, at, text))
        return events

    def _supersede(
        self, session_id: str, reply_to: str | None, attempt: str, now: float
    ) -> list[dict[str, Any]]:
        """A new attempt at answering `reply_to` streams: an earlier attempt's streams still
        here were abandoned (their reader lost its lease, or its process died, before it could
        withdraw them)."""
        streams = self._by_session.get(session_id)
        if not streams or reply_to is None:
            return []
        stale = [s for s in streams.values() if s.reply_to == reply_to and s.attempt != attempt]
        for stream in stale:
            self.withdraw(stream.message_id, now)
        return [end_event(session_id, s.message_id, "superseded") for s in stale]

    def hold(self, session_id: str, now: float) -> list[LiveStream]:
        """An agent took the conversation over: its streams are withdrawn (returned, for their
        clients to be told) and no new one is shown until `release`."""
        self._held[session_id] = now + self._ttl
        streams = list(self._by_session.get(session_id, {}).values())
        for stream in streams:
            self.withdraw(stream.message_id, now)
        return streams

    def release(self, session_id: str) -> None:
        """Handed back to the bot: its replies stream again."""
        self._held.pop(session_id, None)

    def is_gone(self, message_id: str) -> bool:
        """Withdrawn (or never shown: begun while held); its later pieces change nothing."""
        return message_id in self._gone

    def drop(self, message_id: str) -> bool:
        """Stored: forget it. False if it was not here."""
        return self._drop(message_id) is not None

    def withdraw(self, message_id: str, now: float) -> None:
        """Withdrawn: forget it, and any piece of it still to come."""
        self._drop(message_id)
        self._gone[message_id] = now + self._ttl

    def _drop(self, message_id: str) -> LiveStream | None:
        stream = self._by_id.pop(message_id, None)
        if stream is not None:
            streams = self._by_session[stream.session_id]
            del streams[message_id]
            if not streams:
                del self._by_session[stream.session_id]
        return stream

    def expire(self, now: float) -> list[LiveStream]:
        """Streams past their time: forgotten, and returned (their clients are told)."""
        gone = [s for s in self._by_id.values() if s.expires_at <= now]
        for stream in gone:
            self._drop(stream.message_id)
        for message_id in [m for m, until in self._gone.items() if until <= now]:
            del self._gone[message_id]
        for session_id in [s for s, until in self._held.items() if until <= now]:
            del self._held[session_id]
        return gone

    def heard_gap(self) -> None:
        """Notifications may have been lost (LISTEN reconnected): streams read elsewhere may
        miss pieces, so none of them is given as a snapshot any more. A hand-back may have been
        missed too: holds are forgotten (a held reply is withdrawn when it ends, not stored)."""
        self._held.clear()
        for stream in self._by_id.values():
            if not stream.local:
                stream.complete = False
                stream.parts.clear()

    def of_session(self, session_id: str) -> list[LiveStream]:
        """The session's streams that can be shown, in the order they began."""
        streams = self._by_session.get(session_id)
        return [s for s in streams.values() if s.complete] if streams else []

    def version(self, session_id: str) -> int:
        """A number that changes when the session's streams do (a piece, a new one, one gone);
        the same in every process that heard the same pieces, so a long-poll that moves between
        processes is not answered at once for nothing. 0: nothing streams."""
        streams = self.of_session(session_id)
        if not streams:
            return 0
        state = ";".join(f"{s.message_id}:{s.index}" for s in sorted(streams, key=_by_id))
        digest = hashlib.blake2b(state.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") & MAX_VERSION or 1


def _by_id(stream: LiveStream) -> str:
    return stream.message_id
