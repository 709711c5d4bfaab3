"""Streamed pieces from the dispatcher to every client: this process's at once, other processes'
in batches through PostgreSQL's notifications.

A piece read from n8n is published to this process's hub in the same step. For the others it is
queued, and one task sends what is queued in one transaction (several notifications, each under
PostgreSQL's 8,000-byte payload limit), then waits `interval` before sending again: a burst of
tokens costs one round trip per interval for every stream of the process, not one per piece.
Notifications are hints (RELIABILITY.md 9): a failed send is logged and dropped; the stored reply
is the truth, and it follows. `flush()` is the ordering point: a reply is stored only after
every piece of it was sent, so every process sees the pieces before the new_message.

    {"type":"stream","origin":"<process>","items":[
        {"sessionId","messageId","replyTo","attempt","index","pieces":["Hel","lo"]},
        {"sessionId","messageId","end":"failed"}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import structlog
import trio

from chatd.db.messages import MessageStore
from chatd.errors import ChatdError
from chatd.realtime.hub import Hub

log = structlog.get_logger(__name__)

INTERVAL = 0.05  # seconds between two sends of queued pieces
MAX_PAYLOAD_BYTES = 7500  # PostgreSQL refuses 8,000 and more; the envelope needs some room


@dataclass(frozen=True)
class RelayStatistics:
    pieces: int  # pieces published (here, and queued for the other processes)
    notifications: int  # notifications sent
    sends: int  # transactions that sent them
    send_failures: int  # sends that failed (their pieces reached no other process)


class StreamRelay:
    def __init__(
        self, hub: Hub, messages: MessageStore, origin: str, *, interval: float = INTERVAL
    ) -> None:
        self._hub = hub
        self._messages = messages
        self._origin = origin  # this process: the router skips its own notifications
        self._interval = interval
        self._queued: list[dict[str, Any]] = []
        self._open: dict[str, dict[str, Any]] = {}  # a stream's pieces item still being filled
        self._wake = trio.Event()
        self._sending = trio.Lock()
        self._pieces = self._notifications = self._sends = self._send_failures = 0

    def statistics(self) -> RelayStatistics:
        return RelayStatistics(self._pieces, self._notifications, self._sends, self._send_failures)

    @property
    def prefix(self) -> str:
        """How this process's own notifications begin (the router skips them unread)."""
        return _envelope_head(self._origin)

    def pieces(
        self,
        session_id: str,
        message_id: str,
        reply_to: str | None,
        attempt: str,
        index: int,
        texts: list[str],
    ) -> None:
        """Pieces `index`, `index` + 1, ... of a reply read here: shown here now, queued for
        the other processes."""
        self._pieces += len(texts)
        self._hub.publish_pieces(
            session_id, message_id, reply_to, attempt, index, texts, local=True
        )
        if self._hub.streams.is_gone(message_id):  # withdrawn (an agent took over): for no one
            return
        item = self._open.get(message_id)
        if item is None:
            item = {
                "sessionId": session_id,
                "messageId": message_id,
                "replyTo": reply_to,
                "attempt": attempt,
                "index": index,
                "pieces": [],
            }
            self._open[message_id] = item
            self._queue(item)
        item["pieces"].extend(texts)

    def end(self, session_id: str, message_id: str, reason: str) -> None:
        """A reply read here is withdrawn: here now, queued for the other processes."""
        self._hub.publish_stream_end(session_id, message_id, reason)
        self._open.pop(message_id, None)
        self._queue({"sessionId": session_id, "messageId": message_id, "end": reason})

    def _queue(self, item: dict[str, Any]) -> None:
        self._queued.append(item)
        self._wake.set()

    async def flush(self) -> None:
        """Until everything queued so far is sent (or given up: the database is away)."""
        async with self._sending:
            items, self._queued, self._open = self._queued, [], {}
            if not items:
                return
            payloads = encode(self._origin, items)
            try:
                await self._messages.notify_events(payloads)
            except ChatdError as exc:
                self._send_failures += 1
                log.warning("stream_pieces_not_notified", error=str(exc), items=len(items))
            else:
                self._sends += 1
                self._notifications += len(payloads)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            await self.flush()
            await trio.sleep(self._interval)  # pieces queued meanwhile go in the next send


def _envelope_head(origin: str) -> str:
    return f'{{"type":"stream","origin":{json.dumps(origin)},"items":['


def encode(origin: str, items: list[dict[str, Any]]) -> list[str]:
    """Notification payloads carrying `items` in order, each under MAX_PAYLOAD_BYTES."""
    head, tail = _envelope_head(origin), "]}"
    room = MAX_PAYLOAD_BYTES - len(head.encode()) - len(tail)
    payloads: list[str] = []
    batch: list[str] = []
    size = 0
    for text in (t for item in items for t in _fitting(item, room)):
        length = len(text.encode()) + 1  # and its comma
        if batch and size + length > room:
            payloads.append(head + ",".join(batch) + tail)
            batch, size = [], 0
        batch.append(text)
        size += length
    if batch:
        payloads.append(head + ",".join(batch) + tail)
    return payloads


def _fitting(item: dict[str, Any], room: int) -> list[str]:
    """`item` as JSON, split into items of consecutive pieces where it does not fit `room`."""
    text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    pieces = item.get("pieces")
    if len(text.encode()) < room or not pieces or len(pieces) == 1:
        return [text]  # one piece always fits: the parser keeps pieces short (MAX_PIECE_CHARS)
    half = len(pieces) // 2
    first = {**item, "pieces": pieces[:half]}
    second = {**item, "index": item["index"] + half, "pieces": pieces[half:]}
    return _fitting(first, room) + _fitting(second, room)
