"""The chat_sessions aggregate: create a session, and authorize a token for one."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from chatd.core.identity import Identity
from chatd.core.transcript import SessionRecord
from chatd.db.pool import Pool
from chatd.db.queries import query
from chatd.errors import Gone, Unauthorized


@dataclass(frozen=True)
class SessionInfo:
    id: str
    status: str
    metadata: dict[str, Any] | None
    expires_at: datetime
    last_seq: int


@dataclass(frozen=True)
class SessionStoreStatistics:
    created: int  # sessions this process created


class SessionStore:
    def __init__(self, pool: Pool, *, guest_ttl_seconds: float, user_ttl_seconds: float) -> None:
        self._pool = pool
        self._guest_ttl = guest_ttl_seconds
        self._user_ttl = user_ttl_seconds
        self._created = 0

    def statistics(self) -> SessionStoreStatistics:
        return SessionStoreStatistics(self._created)

    async def create(
        self,
        *,
        session_id: str,
        token_hash: bytes,
        identity: Identity,
        guest_email: str | None,
        metadata: dict[str, Any] | None,
    ) -> SessionInfo:
        ttl = self._guest_ttl if identity.user_id is None else self._user_ttl
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                query("create_session"),
                {
                    "id": session_id,
                    "user_id": identity.user_id,
                    "guest_email": guest_email,
                    "metadata": Jsonb(metadata) if metadata is not None else None,
                    "user_context": Jsonb(identity.context),
                    "token_hash": token_hash,
                    "ttl_seconds": ttl,
                },
            )
            row = await cur.fetchone()
        assert row is not None  # INSERT ... RETURNING always returns the row
        self._created += 1
        return SessionInfo(row["id"], row["status"], metadata, row["expires_at"], 0)

    async def authorize(self, session_id: str, token_hash: bytes) -> SessionInfo:
        """The live session this token opens; Unauthorized (unknown or wrong) or Gone (expired)."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(query("session_auth"), {"session_id": session_id})
            ).fetchone()
        check_access(row, token_hash)
        assert row is not None
        return SessionInfo(
            row["id"], row["status"], row["metadata"], row["expires_at"], row["last_seq"]
        )


def check_access(row: dict[str, Any] | None, token_hash: bytes) -> None:
    """Unknown session and wrong token look the same, so session ids cannot be probed."""
    if row is None or not hmac.compare_digest(bytes(row["token_hash"]), token_hash):
        raise Unauthorized("unknown session or wrong session token", code="invalid_session")
    if not row["live"]:
        raise Gone(
            "this chat session has expired or was closed; start a new one", code="session_expired"
        )


def session_record_from_row(row: Mapping[str, Any]) -> SessionRecord:
    """A chat_sessions row (other columns beside it are ignored; `tags`, the conversation's
    tags, when the query read them) as operators see it."""
    return SessionRecord(
        row["id"],
        row["user_id"],
        row["guest_email"],
        row["status"],
        row["metadata"],
        row["created_at"],
        row["updated_at"],
        row["expires_at"],
        row["last_seq"],
        tuple(row.get("tags") or ()),
    )
