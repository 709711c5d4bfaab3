"""Agents online and handoffs waiting for a person (sql/queries/handoffs.sql): presence rows
kept by each process for its inbox sockets, the handoff records the audit trail's trigger
writes, and the figures the metrics read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from chatd.core.histogram import HistogramSnapshot
from chatd.core.messages import Message
from chatd.core.tokens import new_id
from chatd.db.messages import message_from_row
from chatd.db.pool import Pool
from chatd.db.queries import query
from chatd.errors import NotFound


@dataclass(frozen=True)
class OnlineAgent:
    id: str
    name: str


@dataclass(frozen=True)
class PendingHandoff:
    id: int
    session_id: str
    requested_by: str  # shopper, bot, agent
    now: datetime  # the database's clock when read
    agents_online: int


@dataclass(frozen=True)
class LongWait:
    id: int
    session_id: str
    waited_seconds: float


@dataclass(frozen=True)
class HandoffFigures:
    requested: dict[str, int]  # by who asked: shopper, bot, agent
    waiting: int
    agents_online: int
    first_reply: HistogramSnapshot  # seconds from the handoff to the first human reply


class PresenceStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def enter(self, connection_id: str, agent_id: str, ttl_seconds: float) -> None:
        params = {"connection_id": connection_id, "agent_id": agent_id, "ttl_seconds": ttl_seconds}
        async with self._pool.connection() as conn:
            await conn.execute(query("presence_enter"), params)

    async def leave(self, connection_id: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(query("presence_leave"), {"connection_id": connection_id})

    async def sweep(self) -> int:
        async with self._pool.connection() as conn:
            return (await conn.execute(query("presence_sweep"))).rowcount

    async def online(self) -> list[OnlineAgent]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(query("agents_online"))).fetchall()
        return [OnlineAgent(row["id"], row["name"]) for row in rows]


class HandoffStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def unchecked(self, limit: int = 50) -> list[PendingHandoff]:
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(query("handoffs_unchecked"), {"limit": limit})
            ).fetchall()
        return [PendingHandoff(**row) for row in rows]

    async def checked(
        self, handoff_id: int, *, nobody: bool, content: str, metadata: dict[str, Any]
    ) -> tuple[bool, bool]:
        """(claimed here, the shopper's notice stored): False first when another process did."""
        params = {
            "handoff_id": handoff_id,
            "nobody": nobody,
            "message_id": new_id(),
            "content": content,
            "metadata": Jsonb(metadata),
        }
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("handoff_checked"), params)).fetchone()
        assert row is not None  # the statement always returns its one summary row
        return bool(row["claimed"]), bool(row["notified"])

    async def waited_long(self, seconds: float, limit: int = 20) -> list[LongWait]:
        params = {"seconds": seconds, "limit": limit}
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(query("handoffs_waited_long"), params)).fetchall()
        return [LongWait(**row) for row in rows]

    async def contact_email(
        self, session_id: str, email: str, content: str, metadata: dict[str, Any]
    ) -> Message:
        params = {
            "session_id": session_id,
            "email": email,
            "message_id": new_id(),
            "content": content,
            "metadata": Jsonb(metadata),
        }
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("contact_email"), params)).fetchone()
        if row is None:
            raise NotFound("no such live session", code="session_not_found", field="sessionId")
        return message_from_row(row)

    async def figures(self, bounds: Sequence[float]) -> HandoffFigures:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(query("handoff_figures"), {"bounds": list(bounds)})
            ).fetchone()
        assert row is not None
        cumulative = (*row["replied_le"], row["replied_count"])
        return HandoffFigures(
            {"shopper": row["by_shopper"], "bot": row["by_bot"], "agent": row["by_agent"]},
            row["waiting"],
            row["agents_online"],
            HistogramSnapshot(tuple(bounds), tuple(cumulative), row["replied_seconds"]),
        )
