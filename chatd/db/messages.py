"""The chat_messages aggregate: a user message and its webhook job in one transaction; history."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from chatd.core.attachments import link_files
from chatd.core.file_urls import FileLinks
from chatd.core.messages import Message, MessageStatus, NewMessage
from chatd.core.tokens import new_id
from chatd.db.pool import Connection, Pool
from chatd.db.queries import query
from chatd.db.sessions import check_access
from chatd.errors import Conflict, NotFound, RateLimited


@dataclass(frozen=True)
class StoredMessage:
    message: Message
    created: bool  # False when a clientMessageId replay returned the earlier message


@dataclass(frozen=True)
class QueueTarget:
    webhook_url: str
    max_attempts: int
    guest_ttl_seconds: float
    user_ttl_seconds: float
    # User messages per session in any window of this many seconds, across every process.
    rate_limit_max: int = 10
    rate_limit_window_seconds: float = 60.0

    def rate_limited(self, retry_after: float) -> RateLimited:
        return RateLimited(
            f"at most {self.rate_limit_max} messages per {self.rate_limit_window_seconds:g}s"
            " in a session",
            retry_after=retry_after,
        )


class MessageStore:
    def __init__(self, pool: Pool, target: QueueTarget, links: FileLinks | None = None) -> None:
        self._pool = pool
        self._target = target
        self._links = links  # signs the URLs of the files messages carry, as they are read

    @property
    def target(self) -> QueueTarget:
        """Where the messages' jobs go (events of the conversation go there too)."""
        return self._target

    async def send(self, session_id: str, token_hash: bytes, message: NewMessage) -> StoredMessage:
        """Store a user message and its job, unless the session's rate limit is reached (429;
        a clientMessageId replay is answered all the same: it stores nothing new)."""
        target = self._target
        params = {
            "session_id": session_id,
            "token_hash": token_hash,
            "message_id": new_id(),
            "job_id": new_id(),
            "content": message.content,
            "message_type": message.message_type,
            "metadata": Jsonb(message.metadata) if message.metadata is not None else None,
            "client_message_id": message.client_message_id,
            "attachment_ids": list(message.attachments),
            "webhook_url": target.webhook_url,
            "max_attempts": target.max_attempts,
            "guest_ttl_seconds": target.guest_ttl_seconds,
            "user_ttl_seconds": target.user_ttl_seconds,
            "rate_max": target.rate_limit_max,
            "rate_window_seconds": target.rate_limit_window_seconds,
        }
        async with self._pool.connection() as conn:
            # A refusal is read apart from the send: if the window moved on in between, the
            # send is simply tried again.
            for _ in range(3):
                try:
                    row = await (await conn.execute(query("send_user_message"), params)).fetchone()
                except psycopg.errors.UniqueViolation:
                    replay = await self._replay(conn, session_id, message)
                    assert replay is not None  # the unique violation means it exists
                    return replay
                if row is not None:
                    return StoredMessage(self._message(row), created=True)
                refusal = await (await conn.execute(query("send_refusal"), params)).fetchone()
                check_access(refusal, token_hash)
                assert refusal is not None  # check_access refuses a missing session
                blocked = refusal["retry_after"] is not None or _attachments_refused(refusal)
                if blocked and message.client_message_id is not None:
                    # A resend of a stored message: its files are taken (by it), its sends
                    # counted; the answer is the message, as for any replay.
                    replay = await self._replay(conn, session_id, message)
                    if replay is not None:
                        return replay
                _check_attachments(refusal, message.attachments)
                if refusal["retry_after"] is not None:
                    raise target.rate_limited(refusal["retry_after"])
        raise AssertionError("send matched no session three times, yet the session is live")

    async def _replay(
        self, conn: Connection, session_id: str, message: NewMessage
    ) -> StoredMessage | None:
        """The earlier message with this clientMessageId: the same one again, or a conflict."""
        row = await (
            await conn.execute(
                query("message_by_client_id"),
                {
                    "session_id": session_id,
                    "client_message_id": message.client_message_id,
                },
            )
        ).fetchone()
        if row is None:
            return None
        earlier = self._message(row)
        files = tuple(entry["id"] for entry in row["attachments"] or ())
        same = (earlier.content, earlier.message_type, earlier.metadata, files) == (
            message.content,
            message.message_type,
            message.metadata,
            message.attachments,
        )
        if not same:
            raise Conflict(
                "clientMessageId was already used for a different message",
                code="client_message_id_conflict",
                field="clientMessageId",
            )
        return StoredMessage(earlier, created=False)

    async def recent(self, session_id: str, *, limit: int, offset: int = 0) -> list[Message]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                query("recent_messages"),
                {"session_id": session_id, "limit": limit, "offset": offset},
            )
            return [self._message(row) for row in await cur.fetchall()]

    async def notify_event(self, event: dict[str, Any]) -> None:
        """An event for every process's clients of the session that is not stored (typing)."""
        async with self._pool.connection() as conn:
            await conn.execute(query("notify_event"), {"payload": json.dumps(event)})

    async def notify_events(self, payloads: list[str]) -> None:
        """Several notifications in one transaction, delivered in this order."""
        async with self._pool.connection() as conn:
            await conn.execute(query("notify_events"), {"payloads": payloads})

    async def by_ids(self, ids: list[str]) -> list[Message]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(query("messages_by_ids"), {"ids": ids})
            return [self._message(row) for row in await cur.fetchall()]

    async def after_seq(self, session_id: str, after_seq: int, *, limit: int) -> list[Message]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                query("messages_after_seq"),
                {"session_id": session_id, "after_seq": after_seq, "limit": limit},
            )
            return [self._message(row) for row in await cur.fetchall()]

    async def after_seqs(self, last_seqs: dict[str, int], *, limit: int) -> list[Message]:
        """Up to `limit` messages after each session's seq, in session and seq order."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                query("messages_after_seqs"),
                {
                    "session_ids": list(last_seqs),
                    "after_seqs": list(last_seqs.values()),
                    "limit": limit,
                },
            )
            return [self._message(row) for row in await cur.fetchall()]

    def _message(self, row: Mapping[str, Any]) -> Message:
        return message_from_row(row, self._links)

    async def count(self, session_id: str) -> int:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(query("message_count"), {"session_id": session_id})
            ).fetchone()
        return int(row["total"]) if row else 0


# Every message read passes here: a dict lookup costs a tenth of MessageStatus(value).
_STATUSES = {status.value: status for status in MessageStatus}


def message_from_row(row: Mapping[str, Any], links: FileLinks | None = None) -> Message:
    """A chat_messages row (its wire columns; others are ignored) as the type every layer uses;
    its files' URLs signed now with `links` (without, or without the column, it shows none)."""
    described = row.get("attachments")
    return Message(
        row["id"],
        row["session_id"],
        row["sender_type"],
        row["content"],
        row["message_type"],
        row["metadata"],
        _STATUSES[row["status"]],
        row["seq"],
        row["created_at"],
        link_files(described, links, time.time()) if described else (),
        row.get("reply_to"),
    )


def _attachments_refused(refusal: Mapping[str, Any]) -> bool:
    return bool(refusal["attachments_missing"] or refusal["attachments_taken"])


def check_files(refusal: Mapping[str, Any], wanted: tuple[str, ...]) -> None:
    """An agent's files, refused as a shopper's are (the inbox's replies, chatd/db/takeover.py)."""
    _check_attachments(refusal, wanted)


def _check_attachments(refusal: Mapping[str, Any], wanted: tuple[str, ...]) -> None:
    """404 for a file that is not this session's ready upload (another session's looks the
    same: it is none of this one's business), 409 for one another message has taken."""
    if missing := refusal["attachments_missing"]:
        index = wanted.index(missing[0])
        raise NotFound(
            f"attachment {missing[0]} was not uploaded in this session",
            code="attachment_not_found",
            field=f"attachments.{index}",
        )
    if taken := refusal["attachments_taken"]:
        index = wanted.index(taken[0])
        raise Conflict(
            f"attachment {taken[0]} is already attached to another message",
            code="attachment_in_use",
            field=f"attachments.{index}",
        )
