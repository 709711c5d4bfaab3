"""Limits per client address that hold across every chatd process on the database: new sessions,
wrong operator tokens. The count that decides is PostgreSQL's (chatd/db/limits.py: two fixed
windows, weighted into a sliding estimate); a sliding window in this process stands in front of
it (a flood from one address is refused here without a round trip) and stands in for it while
the database is away, where the caller can go on without it (the operators' tokens: /metrics
answers during an outage)."""

from __future__ import annotations

import structlog
import trio

from chatd.core.ratelimit import KeyedLimiter
from chatd.db.limits import LimitStore
from chatd.errors import DatabaseUnavailable

log = structlog.get_logger(__name__)

# Where the caller goes on without the database, it waits for it no longer than this (seconds).
SHARED_COUNT_TIMEOUT = 1.0


class AddressLimit:
    """At most `limit` hits per address in any `window` seconds, counted across the cluster."""

    def __init__(self, store: LimitStore, scope: str, limit: int, window: float) -> None:
        self.scope = scope
        self.limit = limit
        self.window = window
        self._store = store
        self._local = KeyedLimiter(limit, window)

    async def hit(self, key: str, now: float) -> float | None:
        """Count a hit if allowed and return None; else the seconds to wait. The database must
        answer (DatabaseUnavailable otherwise)."""
        wait = self._local.retry_after(key, now)
        if wait is None:
            wait = await self._store.hit(self.scope, key, self.limit, self.window)
            if wait is None:
                self._local.record(key, now)
        return wait

    async def retry_after(self, key: str, now: float) -> float | None:
        """None if `key` may hit now, else the seconds to wait; nothing is counted. With the
        database away, this process's count alone decides."""
        wait = self._local.retry_after(key, now)
        if wait is not None:
            return wait
        try:
            with trio.fail_after(SHARED_COUNT_TIMEOUT):
                return await self._store.retry_after(self.scope, key, self.limit, self.window)
        except (DatabaseUnavailable, trio.TooSlowError) as exc:
            log.warning("address_limit_unshared", scope=self.scope, error=str(exc) or "timeout")
            return None

    async def record(self, key: str, now: float) -> None:
        """Count a hit whatever the count (a failure that must be paid for)."""
        self._local.record(key, now)
        try:
            with trio.fail_after(SHARED_COUNT_TIMEOUT):
                await self._store.record(self.scope, key, self.window)
        except (DatabaseUnavailable, trio.TooSlowError) as exc:
            log.warning("address_limit_unshared", scope=self.scope, error=str(exc) or "timeout")
