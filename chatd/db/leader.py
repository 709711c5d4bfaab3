"""One chatd at a time: a cluster-wide PostgreSQL advisory lock, held for one round of work.

Maintenance (cleanup, alert checks) runs on every process, but each round starts by trying the
lock; whoever gets it works, the others skip the round. A process that dies mid-round loses its
connection and with it the lock, so the next round elsewhere takes over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import structlog
import trio

from chatd.db.pool import Connection, Pool
from chatd.db.queries import query

log = structlog.get_logger(__name__)

UNLOCK_TIMEOUT_SECONDS = 2.0


@asynccontextmanager
async def leadership(pool: Pool, name: str) -> AsyncIterator[Connection | None]:
    """The connection holding lock `name` for the block, or None if another chatd holds it."""
    async with pool.connection() as conn:
        row = await (await conn.execute(query("try_leader_lock"), {"name": name})).fetchone()
        if not (row and row["locked"]):
            yield None
            return
        try:
            yield conn
        finally:
            unlocked = False
            with trio.CancelScope(shield=True):
                with trio.move_on_after(UNLOCK_TIMEOUT_SECONDS):
                    try:
                        await conn.execute(query("leader_unlock"), {"name": name})
                        unlocked = True
                    except psycopg.Error as exc:
                        log.warning("leader_unlock_failed", lock=name, error=str(exc))
                if not unlocked:  # no pooled connection may keep the lock: it goes with this one
                    await conn.close()
