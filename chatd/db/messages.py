"""The chat_messages aggregate: a user message and its webhook job in one transaction; history."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from chatd.core.messages import Message, MessageStatus, NewMessage
from chatd.core.tokens import new_id
from chatd.db.pool import Connection, Pool
from chatd.db.queries import query
from chatd.db.sessions import check_access
from chatd.errors import Conflict, RateLimited


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
    def __init__(self, pool: Pool, target: QueueTarget) -> None:
        self._pool = pool
        self._target = target

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
                    return StoredMessage(message_from_row(row), created=True)
                refusal = await (await conn.execute(query("send_refusal"), params)).fetchone()
                check_access(refusal, token_hash)
                assert refusal is not None  # check_access refuses a missing session
                if refusal["retry_after"] is not None:
                    if message.client_message_id is not None:
                        replay = await self._replay(conn, session_id, message)
                        if replay is not None:
                            return replay
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
        earlier = message_from_row(row)
        same = (earlier.content, earlier.message_type, earlier.metadata) == (
            message.content,
            message.message_type,
            message.metadata,
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
            return [message_from_row(row) for row in await cur.fetchall()]

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
            return [message_from_row(row) for row in await cur.fetchall()]

    async def after_seq(self, session_id: str, after_seq: int, *, limit: int) -> list[Message]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                query("messages_after_seq"),
                {"session_id": session_id, "after_seq": after_seq, "limit": limit},
            )
            return [message_from_row(row) for row in await cur.fetchall()]

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
            return [message_from_row(row) for row in await cur.fetchall()]

    async def count(self, session_id: str) -> int:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(query("message_count"), {"session_id": session_id})
            ).fetchone()
        return int(row["total"]) if row else 0


# Every message read passes here: a dict lookup costs a tenth of MessageStatus(value).
_STATUSES = {status.value: status for status in MessageStatus}


def message_from_row(row: Mapping[str, Any]) -> Message:
    """A chat_messages row (its wire columns; others are ignored) as the type every layer uses."""
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
    )
