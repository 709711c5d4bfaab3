"""Cleanup: expired and old sessions (with their messages and jobs), old completed jobs and old
dead letters, deleted in short batches. A session with a job still to deliver is never deleted,
nor one whose last activity is not rolled up into the analytics yet (rolled up first, here).

Run it under the "cleanup" leader lock (chatd/db/leader.py), so one chatd at a time does it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, LiteralString

import psycopg
import structlog
import trio

from chatd.db.analytics import AnalyticsStore
from chatd.db.bridge import translate
from chatd.db.pool import Pool
from chatd.db.queries import query
from chatd.settings import MaintenanceSettings

log = structlog.get_logger(__name__)

DAY_SECONDS = 86400.0

LABELS = {
    "expired_sessions": "expired sessions",
    "old_sessions": "sessions past retention",
    "completed_jobs": "completed jobs past retention",
    "dead_letters": "dead letters past retention",
}


@dataclass(frozen=True)
class Removed:
    """Rows removed (or, in a dry run, that would be) by one category."""

    sessions: int = 0
    messages: int = 0
    jobs: int = 0

    def __add__(self, other: Removed) -> Removed:
        return Removed(
            self.sessions + other.sessions, self.messages + other.messages, self.jobs + other.jobs
        )


@dataclass(frozen=True)
class CleanupProgress:
    """Reported after every batch that removed something."""

    category: str  # a key of LABELS
    batches: int  # batches of this category so far
    removed: Removed  # by this category so far


@dataclass(frozen=True)
class CleanupSummary:
    expired_sessions: Removed
    old_sessions: Removed
    completed_jobs: Removed
    dead_letters: Removed
    kept_undelivered: int  # expired or old sessions kept: a job of theirs is still to deliver
    batches: int
    elapsed_seconds: float
    dry_run: bool

    def categories(self) -> dict[str, Removed]:
        return {name: getattr(self, name) for name in LABELS}

    def total(self) -> Removed:
        return sum(self.categories().values(), Removed())

    def as_dict(self) -> dict[str, Any]:
        return {
            **{name: asdict(removed) for name, removed in self.categories().items()},
            "total": asdict(self.total()),
            "kept_undelivered": self.kept_undelivered,
            "batches": self.batches,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "dry_run": self.dry_run,
        }

    def lines(self) -> list[str]:
        """A table for humans: one row per category, the total, what was kept and why."""
        columns = [f.name for f in fields(Removed)]
        rows = [(LABELS[name], removed) for name, removed in self.categories().items()]
        out = [f"{'':<32}" + "".join(f"{c:>10}" for c in columns)]
        for label, removed in [*rows, ("total", self.total())]:
            out.append(f"{label:<32}" + "".join(f"{getattr(removed, c):>10}" for c in columns))
        out.append(
            f"{'kept (undelivered)':<32}{self.kept_undelivered:>10}"
            "  sessions with a job still to deliver"
        )
        if self.dry_run:
            out.append("dry run: nothing was deleted")
        else:
            out.append(f"done in {self.elapsed_seconds:.1f}s, {self.batches} batch(es)")
        return out

    def describe(self) -> str:
        return "\n".join(self.lines())


OnProgress = Callable[[CleanupProgress], None]
Batch = Callable[[], Awaitable[tuple[int, Removed]]]  # (rows it looked at, rows removed)


async def run_cleanup(
    pool: Pool,
    config: MaintenanceSettings,
    *,
    dry_run: bool = False,
    on_progress: OnProgress | None = None,
) -> CleanupSummary:
    """One cleanup now (or, with `dry_run`, what it would remove). Database errors, whatever
    their kind, raise DatabaseUnavailable."""
    started = trio.current_time()
    analytics = AnalyticsStore(pool)
    try:
        # Numbers first: a session goes only once its last activity is rolled up.
        if dry_run:
            rolled_until = await analytics.rollup_target()
            removed, batches = await _count(pool, config, rolled_until), 0
        else:
            rolled_until = (await analytics.roll_up()).rolled_until
            removed, batches = await _delete(pool, config, rolled_until, on_progress)
        async with pool.connection() as conn:
            cur = await conn.execute(
                query("count_undelivered_sessions"),
                {"older_than_seconds": config.session_retention_days * DAY_SECONDS},
            )
            kept = await cur.fetchone()
    except psycopg.Error as exc:
        raise translate(exc) from exc
    assert kept is not None  # count(*) always answers
    summary = CleanupSummary(
        **removed,
        kept_undelivered=int(kept["sessions"]),
        batches=batches,
        elapsed_seconds=trio.current_time() - started,
        dry_run=dry_run,
    )
    log.info("cleanup_dry_run" if dry_run else "cleanup_done", **summary.as_dict())
    return summary


async def _count(
    pool: Pool, config: MaintenanceSettings, rolled_until: datetime
) -> dict[str, Removed]:
    session_age = config.session_retention_days * DAY_SECONDS
    sessions = {"older_than_seconds": session_age, "rolled_until": rolled_until}
    completed = {
        "older_than_seconds": config.completed_job_retention_days * DAY_SECONDS,
        "session_older_than_seconds": session_age,
        "rolled_until": rolled_until,
    }
    dead = {
        "older_than_seconds": config.dead_letter_retention_days * DAY_SECONDS,
        "session_older_than_seconds": session_age,
        "rolled_until": rolled_until,
    }
    counts: dict[str, tuple[LiteralString, dict[str, Any]]] = {
        "expired_sessions": (query("count_expired_sessions"), {"rolled_until": rolled_until}),
        "old_sessions": (query("count_old_sessions"), sessions),
        "completed_jobs": (query("count_completed_jobs"), completed),
        "dead_letters": (query("count_dead_jobs"), dead),
    }
    removed: dict[str, Removed] = {}
    async with pool.connection() as conn:
        for name, (sql, params) in counts.items():
            row = await (await conn.execute(sql, params)).fetchone()
            assert row is not None  # count(*) always answers
            removed[name] = Removed(row.get("sessions", 0), row.get("messages", 0), row["jobs"])
    return removed


async def _delete(
    pool: Pool, config: MaintenanceSettings, rolled_until: datetime, on_progress: OnProgress | None
) -> tuple[dict[str, Removed], int]:
    limit = config.batch_size
    old = {
        "limit": limit,
        "older_than_seconds": config.session_retention_days * DAY_SECONDS,
        "rolled_until": rolled_until,
    }
    completed = {
        "limit": limit,
        "older_than_seconds": config.completed_job_retention_days * DAY_SECONDS,
    }
    dead = {"limit": limit, "older_than_seconds": config.dead_letter_retention_days * DAY_SECONDS}

    async def expired_sessions() -> tuple[int, Removed]:
        expired = {"limit": limit, "rolled_until": rolled_until}
        return await _sessions_batch(pool, query("lock_expired_sessions"), expired)

    async def old_sessions() -> tuple[int, Removed]:
        return await _sessions_batch(pool, query("lock_old_sessions"), old)

    async def completed_jobs() -> tuple[int, Removed]:
        return await _jobs_batch(pool, query("delete_completed_jobs"), completed)

    async def dead_letters() -> tuple[int, Removed]:
        return await _jobs_batch(pool, query("delete_dead_jobs"), dead)

    # Sessions first: their cascades take completed jobs and dead letters along for free.
    batches = {
        "expired_sessions": expired_sessions,
        "old_sessions": old_sessions,
        "completed_jobs": completed_jobs,
        "dead_letters": dead_letters,
    }
    removed: dict[str, Removed] = {}
    total_batches = 0
    for name, batch in batches.items():
        removed[name], count = await _drain(name, batch, limit, on_progress)
        total_batches += count
    return removed, total_batches


async def _drain(
    category: str, batch: Batch, limit: int, on_progress: OnProgress | None
) -> tuple[Removed, int]:
    """Run batches until one comes back short (what is left is locked by others, or nothing)."""
    removed, batches = Removed(), 0
    while True:
        seen, gone = await batch()
        if seen:
            batches += 1
            removed += gone
            if on_progress is not None:
                on_progress(CleanupProgress(category, batches, removed))
        if seen < limit:
            return removed, batches


async def _sessions_batch(
    pool: Pool, lock: LiteralString, params: dict[str, Any]
) -> tuple[int, Removed]:
    # Two statements in one transaction: lock the candidates, then delete them with a snapshot
    # taken under the locks (see delete_sessions).
    async with pool.connection() as conn, conn.transaction():
        ids = [row["id"] for row in await (await conn.execute(lock, params)).fetchall()]
        if not ids:
            return 0, Removed()
        cur = await conn.execute(query("delete_sessions"), {"ids": ids})
        row = await cur.fetchone()
    assert row is not None  # the summary row always comes
    return len(ids), Removed(row["sessions"], row["messages"], row["jobs"])


async def _jobs_batch(
    pool: Pool, delete: LiteralString, params: dict[str, Any]
) -> tuple[int, Removed]:
    async with pool.connection() as conn:
        row = await (await conn.execute(delete, params)).fetchone()
    assert row is not None  # count(*) always answers
    return row["jobs"], Removed(jobs=row["jobs"])
