"""Limits shared by every chatd process on the database: hits per client address (new sessions,
wrong operator tokens) and live connections per address. The SQL is sql/queries/limits.sql; the
per-session message limit lives in the send statement itself (sql/queries/messages.sql)."""

from __future__ import annotations

from collections.abc import Mapping

from chatd.core.ratelimit import WindowCounts, weighted_retry_after
from chatd.db.owner import OWNER_LOCK_NAMESPACE
from chatd.db.pool import Pool
from chatd.db.queries import query


class LimitStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    # -- hits per address ------------------------------------------------------------------

    async def hit(self, scope: str, key: str, limit: int, window: float) -> float | None:
        """Count a hit unless `key` reached `limit` in the last `window` seconds (estimated
        from two fixed windows); None if counted, else the seconds to wait."""
        params = {"scope": scope, "key": key, "limit": limit, "window": window}
        async with self._pool.connection() as conn:
            if await (await conn.execute(query("hit_address_limit"), params)).fetchone():
                return None
            row = await (await conn.execute(query("address_limit_state"), params)).fetchone()
        return weighted_retry_after(WindowCounts(**row) if row else None, limit, window)

    async def record(self, scope: str, key: str, window: float) -> None:
        """Count a hit whatever the count (a failure that must be paid for)."""
        params = {"scope": scope, "key": key, "limit": None, "window": window}
        async with self._pool.connection() as conn:
            await conn.execute(query("hit_address_limit"), params)

    async def retry_after(self, scope: str, key: str, limit: int, window: float) -> float | None:
        """None if `key` is below `limit` now, else the seconds to wait (nothing is counted)."""
        params = {"scope": scope, "key": key, "window": window}
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("address_limit_state"), params)).fetchone()
        if row is None or WindowCounts(**row).estimate() < limit:
            return None
        return weighted_retry_after(WindowCounts(**row), limit, window)

    async def sweep_hits(self, batch: int) -> int:
        """Delete up to `batch` rows whose windows are over; returns how many."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(query("sweep_rate_limits"), {"limit": batch})
            return len(await cur.fetchall())

    # -- live connections per address -------------------------------------------------------

    async def admit_connection(
        self, owner: int, address: str, limit: int, released: int = 0
    ) -> int | None:
        """One more connection for `address` under `owner`, unless the cluster already holds
        `limit` there; the new total, or None if refused. `released`: this owner's connections
        at the address that ended and are not yet subtracted (they are, first)."""
        params = {"owner": owner, "address": address, "limit": limit, "released": released}
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("admit_live_connection"), params)).fetchone()
        return row["total"] if row else None

    async def release_connections(self, owner: int, ended: Mapping[str, int]) -> None:
        params = {"owner": owner, "addresses": list(ended), "ended": list(ended.values())}
        async with self._pool.connection() as conn:
            await conn.execute(query("release_live_connections"), params)

    async def register_connections(self, owner: int, counts: Mapping[str, int]) -> None:
        """Replace `owner`'s rows with `counts` (its connections per address, as they are)."""
        params = {"owner": owner, "addresses": list(counts), "counts": list(counts.values())}
        async with self._pool.connection() as conn:
            await conn.execute(query("register_live_connections"), params)

    async def sweep_connections(self, own_token: int) -> int:
        """Remove the rows of dead owners (their lock is gone, and they are not `own_token`,
        the sweeper, whose lock is held) and empty rows; how many went."""
        params = {"namespace": OWNER_LOCK_NAMESPACE, "own_token": own_token}
        async with self._pool.connection() as conn:
            cur = await conn.execute(query("sweep_live_connections"), params)
            return len(await cur.fetchall())
