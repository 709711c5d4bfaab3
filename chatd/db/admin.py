"""What operators read and repair through the admin API: queue figures, throughput, recent
errors, dead letters, sessions and transcripts (sql/queries/admin.sql). Replaying and purging
by age go through QueueStore, which wakes the dispatchers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from chatd.db.pool import Pool
from chatd.db.queries import query

BUCKET_SECONDS = 10
BUCKETS = 60  # ten minutes of 10-second buckets
WEBHOOK_WINDOW_SECONDS = 300
RECENT_ERRORS = 20
MAX_TRANSCRIPT_MESSAGES = 20_000


@dataclass(frozen=True)
class QueueCounts:
    pending: int
    processing: int
    completed_last_hour: int
    dead: int
    oldest_pending_seconds: float
    live_sessions: int


@dataclass(frozen=True)
class WebhookWindow:
    """Cluster-wide outcomes of the last `seconds`, read from the jobs' state."""

    seconds: int
    completed: int
    retrying: int
    dead: int

    @property
    def attempts(self) -> int:
        return self.completed + self.retrying + self.dead

    @property
    def failures(self) -> int:
        return self.retrying + self.dead


@dataclass(frozen=True)
class Overview:
    queue: QueueCounts
    throughput: list[dict[str, Any]]  # {start, received, completed}, oldest bucket first
    webhook: WebhookWindow
    recent_errors: list[dict[str, Any]]


@dataclass(frozen=True)
class Transcript:
    session: dict[str, Any]
    messages: list[dict[str, Any]]


class AdminStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def overview(self) -> Overview:
        """Everything the dashboard shows from the database, over one connection."""
        async with self._pool.connection() as conn:
            counts = await (await conn.execute(query("admin_queue_counts"))).fetchone()
            buckets = await (
                await conn.execute(
                    query("admin_throughput"),
                    {"bucket_seconds": BUCKET_SECONDS, "buckets": BUCKETS},
                )
            ).fetchall()
            window = await (
                await conn.execute(
                    query("admin_webhook_window"), {"window_seconds": WEBHOOK_WINDOW_SECONDS}
                )
            ).fetchone()
            errors = await (
                await conn.execute(query("admin_recent_errors"), {"limit": RECENT_ERRORS})
            ).fetchall()
        assert counts is not None  # scalar subqueries: always one row
        assert window is not None
        return Overview(
            QueueCounts(**counts), buckets, WebhookWindow(WEBHOOK_WINDOW_SECONDS, **window), errors
        )

    async def dead_letters(self, limit: int) -> list[dict[str, Any]]:
        """Newest first, with the content of the message that could not be delivered."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(query("admin_dead_letters"), {"limit": limit})
            return await cur.fetchall()

    async def broadcast(self, content: str, metadata_filter: dict[str, Any] | None) -> int:
        """Store `content` as a system message in every live session matching; how many."""
        params = {
            "content": content,
            "filter": Jsonb(metadata_filter) if metadata_filter is not None else None,
        }
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("admin_broadcast"), params)).fetchone()
        assert row is not None  # count(*) always answers
        return int(row["sessions"])

    async def purge_dead_job(self, job_id: str) -> bool:
        """False when there is no such dead letter."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(query("admin_purge_dead_job"), {"job_id": job_id})
            return await cur.fetchone() is not None

    async def sessions(self, *, limit: int, live_only: bool, q: str | None) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                query("admin_sessions"), {"limit": limit, "live_only": live_only, "q": q}
            )
            return await cur.fetchall()

    async def transcript(self, session_id: str) -> Transcript | None:
        """The session and its messages oldest first; None when there is no such session."""
        params = {"session_id": session_id, "limit": MAX_TRANSCRIPT_MESSAGES}
        async with self._pool.connection() as conn:
            session = await (await conn.execute(query("admin_session"), params)).fetchone()
            if session is None:
                return None
            cur = await conn.execute(query("admin_transcript_messages"), params)
            return Transcript(session, await cur.fetchall())
