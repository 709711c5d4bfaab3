"""One client's ordered view of a session: the messages after its last seq from the database,
then a snapshot of each reply streaming now, then live events, in seq order with no gap and no
duplicate, and each streamed reply's pieces in order with no gap and no repeat.

The subscription starts before the database is read, so a message stored meanwhile is either in
the replay or arrives live (or both: the duplicate is dropped by seq). A live message whose seq
jumps ahead of what the client has (a notification lost, or published out of order) is preceded
by the missing ones, read from the database.

Pieces published while the replay ran wait in the subscription; the snapshot taken at its end
already holds them, so a piece is passed on only if it is the next one this client lacks.
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import Self

from chatd.db.messages import MessageStore
from chatd.realtime.hub import Event, Hub, Subscriber

PAGE = 100


class SessionStream:
    def __init__(
        self,
        hub: Hub,
        messages: MessageStore,
        session_id: str,
        *,
        after_seq: int,
        buffer: int,
        subscriber_id: str,
        page: int = PAGE,  # messages read from the database at a time
    ) -> None:
        self.session_id = session_id
        self.sent = after_seq  # the highest seq this client has been given
        self._hub = hub
        self._messages = messages
        self._subscriber = Subscriber(subscriber_id, buffer)
        self._page = page
        self._replaying = True
        # The last piece given of each streamed reply this client follows (made when needed:
        # most connections never see one, and idle ones must stay small).
        self._pieces: dict[str, int] | None = None
        self._replayed: set[str] | None = None  # bot messages in the replay

    def __enter__(self) -> Self:
        self._hub.subscribe(self.session_id, self._subscriber)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._hub.unsubscribe(self.session_id, self._subscriber)

    @property
    def replaying(self) -> bool:
        return self._replaying

    def nudge(self) -> None:
        """A wait in `next` ends now, with no events."""
        self._subscriber.nudge()

    async def next(self, max_wait: float = math.inf) -> list[Event]:
        """The next events to send: none if `max_wait` seconds pass (or only duplicates came);
        SlowConsumer on overflow. While replaying, one page from the database per call."""
        if self._replaying:
            return await self._replay()
        out: list[Event] = []
        for event in await self._subscriber.get(max_wait):
            if event.seq is None:
                if self._follows(event):
                    out.append(event)
            elif event.seq == self.sent + 1:
                out.append(event)
                self.sent = event.seq
                self._stored(event)
            elif event.seq > self.sent:
                out.extend(await self._repair(event.seq))
        return out

    async def _replay(self) -> list[Event]:
        messages = await self._messages.after_seq(self.session_id, self.sent, limit=self._page)
        self._replaying = len(messages) == self._page
        out = self._accept([Event.new_message(m) for m in messages])
        bots = {m.id for m in messages if m.sender_type != "user"}
        if bots:
            self._replayed = (self._replayed or set()) | bots
        if not self._replaying:
            # After the stored messages, the replies streaming now (no checkpoint in between:
            # every piece published later is in the subscription, and passed on if it is new).
            replayed, self._replayed = self._replayed or set(), None
            for snapshot in self._hub.stream_snapshots(self.session_id):
                message_id = snapshot.data["messageId"]
                if message_id not in replayed:  # stored meanwhile: the replay has it
                    self._following()[message_id] = snapshot.data["index"]
                    out.append(snapshot)
        return out

    def _following(self) -> dict[str, int]:
        if self._pieces is None:
            self._pieces = {}
        return self._pieces

    def _follows(self, event: Event) -> bool:
        """Whether an event without a seq goes to this client: a piece only if it is the next
        of its reply (the snapshot, or an earlier piece, may hold it already)."""
        kind = event.data["type"]
        if kind == "message_delta":
            pieces = self._following()
            message_id, index = event.data["messageId"], event.data["index"]
            if index != pieces.get(message_id, -1) + 1:
                return False
            pieces[message_id] = index
        elif kind == "message_stream_end" and self._pieces:
            self._pieces.pop(event.data["messageId"], None)
        return True

    def _stored(self, event: Event) -> None:
        if self._pieces and event.message is not None:
            self._pieces.pop(event.message.id, None)  # later pieces of it are moot

    async def _repair(self, upto: int) -> list[Event]:
        """Messages sent + 1 .. upto, from the database (they are committed: upto is)."""
        out: list[Event] = []
        while self.sent < upto:
            limit = min(self._page, upto - self.sent)
            messages = await self._messages.after_seq(self.session_id, self.sent, limit=limit)
            if not messages:
                break
            out.extend(self._accept([Event.new_message(m) for m in messages]))
        return out

    def _accept(self, events: list[Event]) -> list[Event]:
        for event in events:
            assert event.seq is not None
            self.sent = max(self.sent, event.seq)
        return events
