"""The fan-out of one process: a Feed per session with local clients, a Subscriber per client,
and the replies streaming now (realtime/streams.py), whose pieces are events like any other.

Publishing never awaits, so an event enters every subscriber's buffer in one step and all of a
session's clients see events in the order they were published. Buffers are bounded: a client
that falls `limit` events behind is marked overflowed and woken; its consumer then ends the
connection (close 4008, end of stream) and the client resumes from its last seq.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import trio

from chatd.core.frames import encode_event
from chatd.core.messages import Message
from chatd.realtime.streams import LiveStreams, end_event, snapshot_event

DEFAULT_STREAM_TTL = 330.0  # n8n.stream_max_seconds and a margin
EXPIRY_PERIOD = 5.0  # seconds between looks for abandoned streams

# The staff inbox's feed: every session's events, for signed-in agents (not an id: no session's).
INBOX_FEED = "inbox"
TAKEN_OVER = "taken_over"  # message_stream_end's reason: an agent took the conversation over


class SlowConsumer(Exception):
    """The client fell too far behind; it must reconnect and resume from its last seq."""


class Closing(Exception):
    """The server is shutting down; the client reconnects (elsewhere) from its last seq."""


class Event:
    """One event as sent to clients; `seq` and `message` are set for new_message only."""

    __slots__ = ("_text", "data", "message", "origin", "seq")

    def __init__(
        self,
        data: dict[str, Any],
        *,
        seq: int | None = None,
        origin: str = "",
        message: Message | None = None,
    ) -> None:
        self.data = data
        self.seq = seq
        self.origin = origin  # the connection a relayed `typing` came from: not echoed to it
        self.message = message
        self._text: str | None = None

    @property
    def type(self) -> str:
        return str(self.data["type"])

    @property
    def ends_bot_typing(self) -> bool:
        """A reply (bot or system message): the protocol says the bot stopped typing."""
        data = self.data
        if data["type"] == "new_message":
            return bool(data["message"]["senderType"] != "user")
        return data["type"] == "bot_typing" and not data.get("isTyping")

    @property
    def text(self) -> str:
        """The JSON, encoded once however many clients receive it."""
        if self._text is None:
            self._text = encode_event(self.data)
        return self._text

    @classmethod
    def new_message(cls, message: Message) -> Event:
        data = {
            "type": "new_message",
            "sessionId": message.session_id,
            "message": message.to_wire(),
        }
        return cls(data, seq=message.seq, message=message)


class Subscriber:
    __slots__ = ("_bot_quiet", "_events", "_wake", "closing", "id", "limit", "overflowed")

    def __init__(self, subscriber_id: str, limit: int) -> None:
        self.id = subscriber_id
        self.limit = limit
        self.overflowed = False
        self.closing = False
        self._bot_quiet = False  # the last bot-typing news this client got: the bot stopped
        self._events: deque[Event] = deque()
        self._wake: trio.Event | None = None

    def put(self, event: Event) -> None:
        if self.overflowed or (event.origin and event.origin == self.id):
            return
        if event.ends_bot_typing:
            if self._bot_quiet and event.type == "bot_typing":
                return  # the client already knows (a reply came): one frame fewer per reply
            self._bot_quiet = True
        elif event.type == "bot_typing":
            self._bot_quiet = False
        if len(self._events) >= self.limit:
            self.overflowed = True
            self._events.clear()  # nothing more will be sent from it: free the memory now
        else:
            self._events.append(event)
        self._wakeup()

    def close(self) -> None:
        self.closing = True
        self._wakeup()

    def nudge(self) -> None:
        """End a wait in `get` without an event (it returns none): the consumer has work due."""
        self._wakeup()

    def _wakeup(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def get(self, max_wait: float = math.inf) -> list[Event]:
        """Every waiting event (none if `max_wait` seconds pass first, or on a nudge);
        SlowConsumer once the buffer has overflowed, Closing once the server is stopping."""
        if not self._events and not self.overflowed and not self.closing:
            self._wake = trio.Event()
            try:
                if max_wait == math.inf:  # the writers' case: no cancel scope per wake-up
                    await self._wake.wait()
                else:
                    with trio.move_on_after(max_wait):
                        await self._wake.wait()
            finally:
                self._wake = None
        if self.overflowed:
            raise SlowConsumer
        if self.closing:
            raise Closing
        batch = list(self._events)
        self._events.clear()
        return batch


class Feed:
    __slots__ = ("last_seq", "subscribers")

    def __init__(self) -> None:
        self.subscribers: dict[str, Subscriber] = {}
        self.last_seq = 0  # the highest seq published here: a message seen twice is sent once


class Hub:
    def __init__(self, stream_ttl: float = DEFAULT_STREAM_TTL) -> None:
        self._feeds: dict[str, Feed] = {}
        self._closing = False
        # While agents are connected: the highest seq of each session sent to the inbox feed.
        self._inbox_seqs: dict[str, int] = {}
        self.streams = LiveStreams(stream_ttl)

    def subscribe(self, session_id: str, subscriber: Subscriber) -> None:
        self._feeds.setdefault(session_id, Feed()).subscribers[subscriber.id] = subscriber
        if self._closing:
            subscriber.close()

    def close(self) -> None:
        """Shutdown: every subscriber's consumer ends its connection."""
        self._closing = True
        for feed in self._feeds.values():
            for subscriber in feed.subscribers.values():
                subscriber.close()

    def unsubscribe(self, session_id: str, subscriber: Subscriber) -> None:
        feed = self._feeds.get(session_id)
        if feed is None:
            return
        feed.subscribers.pop(subscriber.id, None)
        if not feed.subscribers:
            del self._feeds[session_id]
            if session_id == INBOX_FEED:
                self._inbox_seqs.clear()

    def has(self, session_id: str) -> bool:
        return session_id in self._feeds

    def published(self, session_id: str, seq: int) -> bool:
        """True if message `seq` of the session has been published here already (or is moot:
        no local clients), so a notification of it needs no read."""
        feed = self._feeds.get(session_id)
        if INBOX_FEED in self._feeds and seq > self._inbox_seqs.get(session_id, 0):
            return False
        return feed is None or seq <= feed.last_seq

    def last_seqs(self) -> dict[str, int]:
        """Each session with local clients, and the highest seq published to it."""
        return {
            session_id: feed.last_seq
            for session_id, feed in self._feeds.items()
            if session_id != INBOX_FEED
        }

    def publish_message(self, message: Message) -> None:
        """A stored message (from this process's actor, or read after a notification)."""
        event = None
        self.streams.drop(message.id)  # a streamed reply, stored: its text so far is moot
        feed = self._feeds.get(message.session_id)
        if feed is not None and message.seq > feed.last_seq:
            feed.last_seq = message.seq
            event = Event.new_message(message)
            for subscriber in list(feed.subscribers.values()):
                subscriber.put(event)
        inbox = self._feeds.get(INBOX_FEED)
        if inbox is not None and message.seq > self._inbox_seqs.get(message.session_id, 0):
            self._inbox_seqs[message.session_id] = message.seq
            event = event or Event.new_message(message)
            for subscriber in list(inbox.subscribers.values()):
                subscriber.put(event)

    def publish_pieces(
        self,
        session_id: str,
        message_id: str,
        reply_to: str | None,
        attempt: str,
        index: int,
        texts: list[str],
        *,
        local: bool,
    ) -> None:
        """Pieces of a streamed reply, read here (`local`) or notified by another process."""
        events = self.streams.pieces(
            session_id,
            message_id,
            reply_to,
            attempt,
            index,
            texts,
            local=local,
            now=trio.current_time(),
        )
        if session_id in self._feeds:
            for data in events:
                self.publish(session_id, Event(data))

    def publish_stream_end(self, session_id: str, message_id: str, reason: str) -> None:
        """A streamed reply withdrawn: its text so far is shown no more."""
        self.streams.withdraw(message_id, trio.current_time())
        self.publish(session_id, Event(end_event(session_id, message_id, reason)))

    def hold_streams(self, session_id: str, held: bool) -> None:
        """An agent took the conversation (`held`): its streamed replies are withdrawn and no
        new one shows; or it was handed back (not `held`): they show again."""
        if not held:
            self.streams.release(session_id)
            return
        for stream in self.streams.hold(session_id, trio.current_time()):
            self.publish(session_id, Event(end_event(session_id, stream.message_id, TAKEN_OVER)))

    def stream_stored(self, message_id: str) -> None:
        """A message is stored (notified; maybe never read here): if it was a stream, it ended."""
        self.streams.drop(message_id)

    def stream_snapshots(self, session_id: str) -> list[Event]:
        """A `message_stream` of each reply of the session streaming now, in the order they began."""
        return [Event(snapshot_event(s)) for s in self.streams.of_session(session_id)]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """End streams whose reader died without withdrawing them, once past their time."""
        task_status.started()
        while True:
            await trio.sleep(EXPIRY_PERIOD)
            for stream in self.streams.expire(trio.current_time()):
                event = end_event(stream.session_id, stream.message_id, "expired")
                self.publish(stream.session_id, Event(event))

    def publish_inbox(self, event: Event) -> None:
        """An event for staff only (an internal note, an agent's sign-ins ended): the inbox's
        feed, never a session's."""
        feed = self._feeds.get(INBOX_FEED)
        if feed is not None:
            for subscriber in list(feed.subscribers.values()):
                subscriber.put(event)

    def publish(self, session_id: str, event: Event) -> None:
        for key in (session_id, INBOX_FEED):
            feed = self._feeds.get(key)
            if feed is not None:
                for subscriber in list(feed.subscribers.values()):
                    subscriber.put(event)

    @property
    def connections(self) -> int:
        return sum(len(feed.subscribers) for feed in self._feeds.values())
