"""A database to serve from: the configured URL or an embedded PostgreSQL, waited for while it is
down (unless it refuses chatd for good), with its schema migrated or checked.

Used by `chatd serve` and by the commands that need the database (migrate, queue, cleanup,
export), which therefore import no HTTP stack.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
import trio

from chatd.core.backoff import exponential_backoff
from chatd.db.embedded import Cluster, running_url
from chatd.db.embedded_supervisor import open_embedded_postgres
from chatd.db.migrate import migrate, pending
from chatd.db.pool import Pool, PoolConfig, open_pool
from chatd.errors import DatabaseMisconfigured, DatabaseUnavailable, MigrationError
from chatd.settings import Settings

log = structlog.get_logger(__name__)


def pool_config(settings: Settings, url: str) -> PoolConfig:
    db = settings.database
    return PoolConfig(
        url,
        db.pool_min_size,
        db.pool_max_size,
        db.connect_timeout_seconds,
        db.acquire_timeout_seconds,
        db.statement_timeout_ms,
        db.idle_in_transaction_timeout_ms,
    )


@asynccontextmanager
async def open_database_url(
    settings: Settings, state_dir: Path, *, share: bool = False
) -> AsyncIterator[tuple[str, str]]:
    """(url, kind): the configured PostgreSQL, or an embedded one living in the state directory.

    With `share`, an embedded PostgreSQL already running there (a serving chatd's) is used as is.
    """
    if settings.database.url:
        yield settings.database.url, "configured"
        return
    if share and (url := running_url(Cluster(state_dir))):
        yield url, "embedded"
        return
    restart_max = settings.database.embedded_restart_max
    async with open_embedded_postgres(Cluster(state_dir), restart_max=restart_max) as url:
        yield url, "embedded"


async def wait_for_database(config: PoolConfig, say: Callable[[str], Awaitable[None]]) -> None:
    """Until PostgreSQL answers: a daemon started before its database waits for it, saying so
    (a log line, and `say`: systemd's STATUS=), rather than exiting into a restart loop. One that refuses chatd for good
    (DatabaseMisconfigured: password, role, database) is not waited for."""
    attempt = 0
    while True:
        try:
            async with open_pool(config):
                return
        except DatabaseMisconfigured:
            raise
        except DatabaseUnavailable as exc:
            attempt += 1
            delay = exponential_backoff(attempt, base=0.5, cap=10.0, rand=random.random())
            log.warning("database_waiting", error=str(exc), retry_in_seconds=round(delay, 2))
            await say(f"waiting for PostgreSQL: {exc}")
            await trio.sleep(delay)


async def prepare_schema(pool: Pool, apply: bool) -> None:
    async with pool.connection() as conn:
        if apply:
            for applied in await migrate(
                conn, on_apply=lambda m: log.info("migration_applying", file=m.filename)
            ):
                log.info("migration_applied", file=applied.filename)
        elif todo := await pending(conn):
            raise MigrationError(
                f"the database schema is behind ({len(todo)} migration(s) pending, first"
                f" {todo[0].filename}); run `chatd migrate` or start without --no-migrate"
            )
