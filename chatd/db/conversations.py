"""How conversations end and are rated: close (by the shopper or staff), rate once after the
end (with the n8n event's job in the same transaction), and read a session's end and rating.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from chatd.core.csat import (
    ENDED_CONTENT,
    Ending,
    ShopperRating,
    ended_metadata,
    ending_of,
    rating_content,
    rating_metadata,
)
from chatd.core.messages import Message
from chatd.core.tokens import new_id
from chatd.db.messages import QueueTarget, message_from_row
from chatd.db.pool import Pool
from chatd.db.queries import query
from chatd.errors import Conflict, Unauthorized


@dataclass(frozen=True)
class Conversation:
    """A session as its end and rating concern it."""

    id: str
    status: str  # the column: active or closed
    ending: Ending | None  # None while live
    rating: ShopperRating | None
    expires_at: datetime
    metadata: dict[str, Any] | None


@dataclass(frozen=True)
class Rated:
    rating: ShopperRating
    message: Message  # the system message naming it


def _unknown() -> Unauthorized:
    return Unauthorized("unknown session or wrong session token", code="invalid_session")


class ConversationStore:
    def __init__(self, pool: Pool, target: QueueTarget) -> None:
        self._pool = pool
        self._target = target

    async def state(self, session_id: str, token_hash: bytes | None) -> Conversation:
        """The session, live or ended; Unauthorized if unknown or (given a hash) not its token."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(query("conversation_state"), {"session_id": session_id})
            ).fetchone()
        return _conversation(row, token_hash)

    async def close(
        self, session_id: str, by: Ending, token_hash: bytes | None = None
    ) -> tuple[Conversation, Message | None]:
        """End a live conversation (the shopper's, by its token; staff's without one): the
        conversation and the "Chat ended" message; an ended one is left as it was (None)."""
        params = {
            "session_id": session_id,
            "by": by.value,
            "token_hash": token_hash,
            "message_id": new_id(),
            "content": ENDED_CONTENT,
            "metadata": Jsonb(ended_metadata(by)),
        }
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("close_session"), params)).fetchone()
            state = await (await conn.execute(query("conversation_state"), params)).fetchone()
        conversation = _conversation(state, token_hash)
        return conversation, message_from_row(row) if row is not None else None

    async def rate(
        self,
        session_id: str,
        token_hash: bytes,
        rating: int,
        comment: str | None,
        *,
        notify_n8n: bool,
    ) -> Rated:
        """The rating of an ended conversation, once; with `notify_n8n`, queued for n8n as an
        event. 401 unknown or wrong token; 409 rated already, or not ended."""
        params = {
            "session_id": session_id,
            "token_hash": token_hash,
            "rating": rating,
            "comment": comment,
            "message_id": new_id(),
            "job_id": new_id(),
            "content": rating_content(rating, comment),
            "metadata": Jsonb(rating_metadata(rating, comment)),
            "notify": notify_n8n,
            "webhook_url": self._target.webhook_url,
            "max_attempts": self._target.max_attempts,
        }
        async with self._pool.connection() as conn:
            try:
                row = await (await conn.execute(query("rate_session"), params)).fetchone()
            except psycopg.errors.UniqueViolation:
                raise _rated_already() from None
            if row is not None:
                rated = ShopperRating(row["rating"], row["comment"], row["rated_at"])
                return Rated(rated, message_from_row(row))
            state = await (await conn.execute(query("conversation_state"), params)).fetchone()
        conversation = _conversation(state, token_hash)
        if conversation.rating is not None:
            raise _rated_already()
        raise Conflict(
            "this conversation is still going on: end it first", code="conversation_active"
        )

    async def rating(self, session_id: str) -> ShopperRating | None:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(query("session_rating"), {"session_id": session_id})
            ).fetchone()
        return ShopperRating(row["rating"], row["comment"], row["created_at"]) if row else None


def _rated_already() -> Conflict:
    return Conflict("this conversation was rated already", code="already_rated")


def _conversation(row: dict[str, Any] | None, token_hash: bytes | None) -> Conversation:
    if row is None:
        raise _unknown()
    if token_hash is not None and not hmac.compare_digest(bytes(row["token_hash"]), token_hash):
        raise _unknown()
    rating = None
    if row["rating"] is not None:
        rating = ShopperRating(row["rating"], row["comment"], row["rated_at"])
    ending = ending_of(row["status"], row["closed_by"], row["expires_at"], row["now"])
    return Conversation(
        row["id"], row["status"], ending, rating, row["expires_at"], row["metadata"]
    )
