"""The periodic cleanup: every `maintenance.interval_seconds`, the chatd holding the "cleanup"
leader lock runs one cleanup; the others skip the round. Database trouble skips a round too.
The round also sweeps the per-address counters whose windows are over (chatd/db/limits.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import structlog
import trio

from chatd.db.cleanup import CleanupSummary, FileDeleter, run_cleanup
from chatd.db.leader import leadership
from chatd.db.limits import LimitStore
from chatd.db.pool import Pool
from chatd.errors import DatabaseUnavailable
from chatd.settings import MaintenanceSettings

log = structlog.get_logger(__name__)

LOCK = "cleanup"
# Processes started together (a deploy) spread their first round over up to a minute.
FIRST_ROUND_MAX_DELAY_SECONDS = 60.0
PAUSED_RECHECK_SECONDS = 60.0  # interval 0: look again this often (a reload may set one)


async def run_maintenance(
    pool: Pool,
    settings: Callable[[], MaintenanceSettings],
    *,
    first_delay: float | None = None,
    files: FileDeleter | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Clean up every interval until cancelled. The first round comes after `first_delay`
    seconds (default: random, at most a minute and at most one interval). `settings` is read
    each round, so a reload (SIGHUP) applies from the next one; interval 0 pauses cleanup."""
    task_status.started()
    interval = settings().interval_seconds or FIRST_ROUND_MAX_DELAY_SECONDS
    if first_delay is None:
        first_delay = random.uniform(0, min(FIRST_ROUND_MAX_DELAY_SECONDS, interval))
    await trio.sleep(first_delay)
    while True:
        config = settings()
        if config.interval_seconds > 0:
            await maintenance_round(pool, config, files)
        await trio.sleep(config.interval_seconds or PAUSED_RECHECK_SECONDS)


async def maintenance_round(
    pool: Pool, config: MaintenanceSettings, files: FileDeleter | None = None
) -> CleanupSummary | None:
    """One round: the cleanup's summary, or None if another chatd leads or the database failed."""
    try:
        async with leadership(pool, LOCK) as leader:
            if leader is None:
                log.debug("maintenance_skipped", reason="another chatd holds the cleanup lock")
                return None
            summary = await run_cleanup(pool, config, files=files)
            await sweep_counters(LimitStore(pool), config.batch_size)
            return summary
    except DatabaseUnavailable as exc:
        log.warning("maintenance_failed", error=str(exc))
        return None


async def sweep_counters(store: LimitStore, batch: int) -> int:
    """Delete the per-address counters whose windows are over, in batches; how many went."""
    swept = 0
    while True:
        gone = await store.sweep_hits(batch)
        swept += gone
        if gone < batch:
            if swept:
                log.info("counters_swept", rows=swept)
            return swept
