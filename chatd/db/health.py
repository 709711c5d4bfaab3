"""Cluster-wide figures read straight from the database: for the health endpoint, and for
/metrics and systemd's STATUS line (sql/queries/health.sql, metrics.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, LiteralString

from chatd.db.pool import Pool
from chatd.db.queries import query


@dataclass(frozen=True)
class HealthCounts:
    pending_webhooks: int
    active_sessions: int
    messages_last_24h: int
    dead_letters: int
    oldest_pending_seconds: float


@dataclass(frozen=True)
class QueueSnapshot:
    pending: int
    processing: int
    dead: int
    oldest_due_seconds: float
    active_sessions: int
    attachment_bytes: int = 0  # stored files, originals and thumbnails


async def ping(pool: Pool) -> None:
    async with pool.connection() as conn:
        await conn.execute(query("ping"))


async def health_counts(pool: Pool) -> HealthCounts:
    return HealthCounts(**await _figures(pool, query("health_counts")))


async def queue_snapshot(pool: Pool) -> QueueSnapshot:
    return QueueSnapshot(**await _figures(pool, query("metrics_snapshot")))


async def _figures(pool: Pool, sql: LiteralString) -> dict[str, Any]:
    async with pool.connection() as conn:
        row = await (await conn.execute(sql)).fetchone()
    assert row is not None  # a SELECT of scalar subqueries always returns one row
    return row
