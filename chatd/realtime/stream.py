"""One client's ordered view of a session: the messages after its last seq from the database,
then live events, in seq order with no gap and no duplicate.

The subscription starts before the database is read, so a message stored meanwhile is either in
the replay or arrives live (or both: the duplicate is dropped by seq). A live message whose seq
jumps ahead of what the client has (a notification lost, or published out of order) is preceded
by the missing ones, read from the database.
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
            messages = await self._messages.after_seq(self.session_id, self.sent, limit=self._page)
            self._replaying = len(messages) == self._page
            return self._accept([Event.new_message(m) for m in messages])
        out: list[Event] = []
        for event in await self._subscriber.get(max_wait):
            if event.seq is None:
                out.append(event)
            elif event.seq == self.sent + 1:
                out.append(event)
                self.sent = event.seq
            elif event.seq > self.sent:
                out.extend(await self._repair(event.seq))
        return out

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
