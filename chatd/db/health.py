"""Figures for the health endpoint, read straight from the database."""

from __future__ import annotations

from dataclasses import dataclass

from chatd.db.pool import Pool
from chatd.db.queries import query


@dataclass(frozen=True)
class HealthCounts:
    pending_webhooks: int
    active_sessions: int
    messages_last_24h: int
    dead_letters: int
    oldest_pending_seconds: float


async def ping(pool: Pool) -> None:
    async with pool.connection() as conn:
        await conn.execute(query("ping"))


async def health_counts(pool: Pool) -> HealthCounts:
    async with pool.connection() as conn:
        row = await (await conn.execute(query("health_counts"))).fetchone()
    assert row is not None  # a SELECT of scalar subqueries always returns one row
    return HealthCounts(**row)
