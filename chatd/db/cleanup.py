"""Cleanup: expired and old sessions (with their messages, jobs and files), old completed jobs,
old dead letters and uploads that never finished, deleted in short batches. A session with a
job still to deliver is never deleted, nor one whose last activity is not rolled up into the
analytics yet (rolled up first, here).

Files in PostgreSQL go with their rows (ON DELETE CASCADE). Files on disk (`files`) are deleted
after the transaction that deleted their rows commits: a crash in between leaves files nobody
can reach (the orphan sweep at the end of each cleanup removes them), never a row whose file
is gone.

Run it under the "cleanup" leader lock (chatd/db/leader.py), so one chatd at a time does it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from functools import partial
from typing import Any, LiteralString, Protocol

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
# An upload still unfinished after this long was cut off by its chatd's death; one in progress
# sends something every minute (chatd/files/upload.py IDLE_SECONDS), and none lasts this long.
STALE_UPLOAD_SECONDS = 6 * 3600.0


class FileDeleter(Protocol):
    """The disk store (chatd/files/disk.py), as cleanup uses it."""

    async def delete(self, attachment_ids: Sequence[str]) -> None: ...

    async def sweep_orphans(self, existing: Callable[[list[str]], Awaitable[set[str]]]) -> int: ...


LABELS = {
    "expired_sessions": "expired sessions",
    "old_sessions": "sessions past retention",
    "completed_jobs": "completed jobs past retention",
    "dead_letters": "dead letters past retention",
    "stale_uploads": "uploads never finished",
}


@dataclass(frozen=True)
class Removed:
    """Rows removed (or, in a dry run, that would be) by one category."""

    sessions: int = 0
    messages: int = 0
    jobs: int = 0
    attachments: int = 0  # files (rows of chat_attachments, with their bytes)

    def __add__(self, other: Removed) -> Removed:
        return Removed(
            self.sessions + other.sessions,
            self.messages + other.messages,
            self.jobs + other.jobs,
            self.attachments + other.attachments,
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
    stale_uploads: Removed
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
        out = [f"{'':<32}" + "".join(f"{c:>12}" for c in columns)]
        for label, removed in [*rows, ("total", self.total())]:
            out.append(f"{label:<32}" + "".join(f"{getattr(removed, c):>12}" for c in columns))
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
    files: FileDeleter | None = None,
) -> CleanupSummary:
    """One cleanup now (or, with `dry_run`, what it would remove); `files`: the disk store,
    when attachments.directory is set. Database errors, whatever their kind, raise
    DatabaseUnavailable."""
    started = trio.current_time()
    analytics = AnalyticsStore(pool)
    try:
        # Numbers first: a session goes only once its last activity is rolled up.
        if dry_run:
            rolled_until = await analytics.rollup_target()
            removed, batches = await _count(pool, config, rolled_until), 0
        else:
            rolled_until = (await analytics.roll_up()).rolled_until
            removed, batches = await _delete(pool, config, rolled_until, on_progress, files)
            if files is not None:
                await files.sweep_orphans(partial(_existing, pool))
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
        "stale_uploads": (
            query("count_stale_uploads"),
            {"older_than_seconds": STALE_UPLOAD_SECONDS},
        ),
    }
    removed: dict[str, Removed] = {}
    async with pool.connection() as conn:
        for name, (sql, params) in counts.items():
            row = await (await conn.execute(sql, params)).fetchone()
            assert row is not None  # count(*) always answers
            removed[name] = Removed(
                row.get("sessions", 0),
                row.get("messages", 0),
                row.get("jobs", 0),
                row.get("attachments", 0),
            )
    return removed


async def _delete(
    pool: Pool,
    config: MaintenanceSettings,
    rolled_until: datetime,
    on_progress: OnProgress | None,
    files: FileDeleter | None,
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
        return await _sessions_batch(pool, query("lock_expired_sessions"), expired, files)

    async def old_sessions() -> tuple[int, Removed]:
        return await _sessions_batch(pool, query("lock_old_sessions"), old, files)

    async def stale_uploads() -> tuple[int, Removed]:
        return await _stale_uploads_batch(pool, limit, files)

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
        "stale_uploads": stale_uploads,
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
    pool: Pool, lock: LiteralString, params: dict[str, Any], files: FileDeleter | None
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
    if files is not None and row["disk_files"]:
        await files.delete(row["disk_files"])  # their rows are gone: committed above
    removed = Removed(row["sessions"], row["messages"], row["jobs"], row["attachments"])
    return len(ids), removed


async def _stale_uploads_batch(
    pool: Pool, limit: int, files: FileDeleter | None
) -> tuple[int, Removed]:
    params = {"limit": limit, "older_than_seconds": STALE_UPLOAD_SECONDS}
    async with pool.connection() as conn, conn.transaction():
        rows = await (await conn.execute(query("stale_uploads"), params)).fetchall()
        if rows:
            await conn.execute(query("delete_attachments"), {"ids": [r["id"] for r in rows]})
    on_disk = [row["id"] for row in rows if row["storage"] == "disk"]
    if files is not None and on_disk:
        await files.delete(on_disk)
    return len(rows), Removed(attachments=len(rows))


async def _existing(pool: Pool, ids: list[str]) -> set[str]:
    async with pool.connection() as conn:
        cur = await conn.execute(query("existing_attachments"), {"ids": ids})
        return {row["id"] for row in await cur.fetchall()}


async def _jobs_batch(
    pool: Pool, delete: LiteralString, params: dict[str, Any]
) -> tuple[int, Removed]:
    async with pool.connection() as conn:
        row = await (await conn.execute(delete, params)).fetchone()
    assert row is not None  # count(*) always answers
    return row["jobs"], Removed(jobs=row["jobs"])
