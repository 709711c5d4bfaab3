"""From PostgreSQL's notifications to this process's feeds.

Notifications carry ids only (sql/migrations/0003_events.sql); the messages they name are read
in one query per batch, so a burst of thousands costs a handful of queries. Only sessions with
local clients are read. A notification is a hint: when some may have been lost (the LISTEN
connection dropped, the inbox overflowed, a read failed) every feed is re-read from its last
seq, and the streams read elsewhere are no longer given as snapshots (pieces may be missing).

Internal notes (`note`: staff only) are read the same way and given to the inbox's feed alone,
never to a session's: a shopper's connection cannot hear of them.

Streamed pieces come whole in their notifications (chatd/realtime/relay.py); every process keeps
the text so far of every stream it hears of, local clients or not, for a client that resumes
here. Our own process's notifications are skipped unread: its pieces were published already.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
import trio

from chatd.db.messages import MessageStore
from chatd.db.notes import NoteStore
from chatd.errors import ChatdError
from chatd.realtime.hub import INBOX_FEED, Event, Hub

log = structlog.get_logger(__name__)

INBOX = 10_000  # notifications waiting to be routed; beyond it they are dropped and feeds re-read
BATCH = 1_000  # notifications routed per round (one query for their messages)
REREAD_FEEDS = 1_000  # feeds re-read per query
REREAD_LIMIT = 100  # messages per feed and re-read: a client further behind repairs its own gap
RETRY_SECONDS = 0.5  # pause before re-reading after a failed read


class EventRouter:
    def __init__(
        self,
        hub: Hub,
        messages: MessageStore,
        *,
        reread_feeds: int = REREAD_FEEDS,
        own_prefix: str | None = None,  # how our own relay's notifications begin
        notes: NoteStore | None = None,  # reads the notes notified (None: they are not routed)
    ) -> None:
        self._hub = hub
        self._messages = messages
        self._notes = notes
        self._reread_feeds = reread_feeds
        self._own_prefix = own_prefix
        self._send, self._receive = trio.open_memory_channel[str | None](INBOX)
        self._resync = False
        self.routed = 0
        self.resyncs = 0

    def on_notify(self, payload: str) -> None:
        """The Listener's handler for the events channel: never blocks."""
        if self._own_prefix is not None and payload.startswith(self._own_prefix):
            return
        self._queue(payload)

    def on_connect(self) -> None:
        """LISTEN is (again) active: whatever happened while it was not must be re-read."""
        self._resync = True
        self._hub.streams.heard_gap()
        self._queue(None)

    def _queue(self, item: str | None) -> None:
        try:
            self._send.send_nowait(item)
        except trio.WouldBlock:
            self._resync = True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            batch = [await self._receive.receive()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._receive.receive_nowait())
                except trio.WouldBlock:
                    break
            try:
                if self._resync:
                    self._resync = False
                    await self._reread()
                await self._route([item for item in batch if item is not None])
            except ChatdError as exc:
                log.warning("events_read_failed", error=str(exc))
                self._resync = True
                await trio.sleep(RETRY_SECONDS)
                self._queue(None)

    async def _route(self, payloads: list[str]) -> None:
        notes: list[dict[str, Any]] = []
        staff_notes: list[str] = []
        for payload in payloads:
            note = parse_notification(payload)
            if note is None:
                log.warning("events_bad_notification", payload=payload[:200])
            elif note["type"] == "note":  # staff only: never published to a session's feed
                if self._hub.has(INBOX_FEED):
                    staff_notes.append(note["noteId"])
            elif note["type"] == "stream":
                self._stream(note["items"])
            elif note["type"] in STAFF_ONLY:
                self._hub.publish_inbox(Event(note))
            elif note["type"] == "stream_hold":  # every process keeps every session's streams
                self._hub.hold_streams(note["sessionId"], note["held"])
            elif note["type"] == "new_message":
                self._hub.stream_stored(note["messageId"])
                # Most were published by this process's actor already: those need no read.
                if not self._hub.published(note["sessionId"], note["seq"]):
                    notes.append(note)
            elif self._hub.has(note["sessionId"]) or self._hub.has(INBOX_FEED):
                notes.append(note)
        ids = [note["messageId"] for note in notes if note["type"] == "new_message"]
        found = {m.id: m for m in await self._messages.by_ids(ids)} if ids else {}
        for note in notes:
            if note["type"] == "new_message":
                if (message := found.get(note["messageId"])) is not None:
                    self._hub.publish_message(message)
            else:
                origin = str(note.pop("origin", ""))
                self._hub.publish(note["sessionId"], Event(note, origin=origin))
        self.routed += len(notes)
        if staff_notes and self._notes is not None:
            for staff_note in await self._notes.by_ids(staff_notes):
                self._hub.publish_inbox(Event(staff_note.event()))
            self.routed += len(staff_notes)

    def _stream(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            if "end" in item:
                self._hub.publish_stream_end(item["sessionId"], item["messageId"], item["end"])
            else:
                self._hub.publish_pieces(
                    item["sessionId"],
                    item["messageId"],
                    item["replyTo"],
                    item["attempt"],
                    item["index"],
                    item["pieces"],
                    local=False,
                )
        self.routed += len(items)

    async def _reread(self) -> None:
        self.resyncs += 1
        feeds = list(self._hub.last_seqs().items())
        for start in range(0, len(feeds), self._reread_feeds):
            chunk = dict(feeds[start : start + self._reread_feeds])
            for message in await self._messages.after_seqs(chunk, limit=REREAD_LIMIT):
                self._hub.publish_message(message)


# Not for shoppers: for the inbox's sockets of the agent named (routes_inbox_ws.py).
STAFF_ONLY = ("staff_signed_out", "conversation_read")
KINDS = (
    "new_message",
    "message_status",
    "bot_typing",
    "typing",
    "stream",
    "stream_hold",
    "note",
    *STAFF_ONLY,
)


def parse_notification(payload: str) -> dict[str, Any] | None:
    """A chatd_events payload with the fields routing relies on, or None. Anyone who can
    connect to the database can NOTIFY this channel: a bad payload must not stop the router."""
    try:
        note = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(note, dict) or note.get("type") not in KINDS:
        return None
    if note["type"] == "stream":
        items = note.get("items")
        if not isinstance(items, list) or not all(_stream_item(item) for item in items):
            return None
        return note
    if note["type"] == "staff_signed_out":  # for the inbox's sockets (no session's)
        return note if isinstance(note.get("agentId"), str) else None
    if not isinstance(note.get("sessionId"), str):
        return None
    if note["type"] == "stream_hold":
        return note if isinstance(note.get("held"), bool) else None
    if note["type"] == "conversation_read" and not (
        isinstance(note.get("agentId"), str) and type(note.get("lastReadSeq")) is int
    ):
        return None
    if note["type"] == "new_message" and not (
        isinstance(note.get("messageId"), str) and type(note.get("seq")) is int
    ):
        return None
    if note["type"] == "note" and not isinstance(note.get("noteId"), str):
        return None
    return note


def _stream_item(item: Any) -> bool:
    """A relay's item: some pieces of a stream, or its end (chatd/realtime/relay.py)."""
    if not isinstance(item, dict):
        return False
    if not (isinstance(item.get("sessionId"), str) and isinstance(item.get("messageId"), str)):
        return False
    if "end" in item:
        return isinstance(item["end"], str)
    index, pieces = item.get("index"), item.get("pieces")
    return (
        (item.get("replyTo") is None or isinstance(item.get("replyTo"), str))
        and isinstance(item.get("attempt"), str)
        and type(index) is int
        and index >= 0
        and isinstance(pieces, list)
        and bool(pieces)
        and all(isinstance(piece, str) for piece in pieces)
    )
