"""The inbox's live extras in the database (sql/queries/inbox_live.sql): how far each agent has
read each conversation, and who holds one (whose typing a shopper may see)."""

from __future__ import annotations

from dataclasses import dataclass

from chatd.db.pool import Pool
from chatd.db.queries import query


@dataclass(frozen=True)
class ReadMark:
    session_id: str
    last_read_seq: int
    unread: int  # the shopper's messages after it (at most 100)


class ReadStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def mark_read(self, agent_id: str, session_id: str, last_seq: int) -> ReadMark | None:
        """Read up to `last_seq` (None: no such conversation); the agent's other sockets told."""
        params = {"agent_id": agent_id, "session_id": session_id, "last_seq": last_seq}
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("agent_read_mark"), params)).fetchone()
        if row is None:
            return None
        return ReadMark(row["session_id"], row["last_read_seq"], row["unread"])

    async def holder(self, session_id: str) -> str | None:
        """The agent holding the live conversation, if any."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(query("conversation_holder"), {"session_id": session_id})
            row = await cur.fetchone()
        return None if row is None else str(row["agent_id"])
