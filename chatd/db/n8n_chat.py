"""Sessions of n8n's own chat widget: an @n8n/chat sessionId's key, mapped to a chatd session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from chatd.core.identity import Identity
from chatd.core.tokens import new_id
from chatd.db.pool import Pool
from chatd.db.queries import query


@dataclass(frozen=True)
class WidgetSession:
    id: str  # the chatd session's own id (never the widget's UUID)
    user_id: str | None
    created: bool  # this call created it


class WidgetSessionStore:
    def __init__(self, pool: Pool, *, guest_ttl_seconds: float, user_ttl_seconds: float) -> None:
        self._pool = pool
        self._guest_ttl = guest_ttl_seconds
        self._user_ttl = user_ttl_seconds

    async def find(self, key: bytes) -> WidgetSession | None:
        """The live session of `key`, or None (never used, or expired or closed)."""
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("n8n_chat_session"), {"key": key})).fetchone()
        if row is None or not row["live"]:
            return None
        return WidgetSession(row["id"], row["user_id"], created=False)

    async def open(
        self, key: bytes, identity: Identity, metadata: dict[str, Any] | None
    ) -> WidgetSession:
        """The live session of `key`, created on first use (or after the last one expired)."""
        found = await self.find(key)
        if found is not None:
            return found
        ttl = self._guest_ttl if identity.user_id is None else self._user_ttl
        params = {
            "id": new_id(),
            "key": key,
            "user_id": identity.user_id,
            "metadata": Jsonb(metadata) if metadata is not None else None,
            "user_context": Jsonb(identity.context),
            "ttl_seconds": ttl,
        }
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(query("n8n_chat_release"), {"key": key})
            row = await (await conn.execute(query("create_n8n_chat_session"), params)).fetchone()
            if row is None:  # another request created it a moment ago
                row = await (await conn.execute(query("n8n_chat_session"), {"key": key})).fetchone()
                assert row is not None  # the conflict means it exists
                return WidgetSession(row["id"], row["user_id"], created=False)
        return WidgetSession(row["id"], row["user_id"], created=True)
