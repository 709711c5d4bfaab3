"""Rate limits: sliding windows (a log of recent hits) kept in a process, the arithmetic of the
cluster-wide ones kept in PostgreSQL (two fixed windows, weighted), and live connections per
key. The clock comes in as `now` (seconds)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


class SlidingWindow:
    """At most `limit` hits in any `window` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._hits and self._hits[0] <= now - self.window:
            self._hits.popleft()

    def retry_after(self, now: float) -> float | None:
        """None if a hit is allowed now, else seconds until one will be."""
        self._expire(now)
        if len(self._hits) < self.limit:
            return None
        return self._hits[0] + self.window - now

    def record(self, now: float) -> None:
        self._hits.append(now)

    def is_empty(self, now: float) -> bool:
        self._expire(now)
        return not self._hits


class KeyedLimiter:
    """One SlidingWindow per key (e.g. client IP); empty windows are swept so memory stays bounded."""

    def __init__(self, limit: int, window: float, sweep_at: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self._sweep_at = sweep_at
        self._swept_at = float("-inf")
        self._windows: dict[str, SlidingWindow] = {}

    def hit(self, key: str, now: float) -> float | None:
        """Record a hit if allowed and return None; else return the seconds to wait."""
        wait = self.retry_after(key, now)
        if wait is None:
            self.record(key, now)
        return wait

    def retry_after(self, key: str, now: float) -> float | None:
        """None if `key` may hit now, else the seconds to wait (nothing is recorded)."""
        window = self._windows.get(key)
        return window.retry_after(now) if window is not None else None

    def record(self, key: str, now: float) -> None:
        """Count a hit for `key`, allowed or not (e.g. a failure that must be paid for)."""
        # At most one sweep per window: all keys may be busy, and a sweep costs O(keys).
        if len(self._windows) >= self._sweep_at and now - self._swept_at >= self.window:
            self._swept_at = now
            self._windows = {k: w for k, w in self._windows.items() if not w.is_empty(now)}
        self._windows.setdefault(key, SlidingWindow(self.limit, self.window)).record(now)

    def __len__(self) -> int:
        return len(self._windows)


class ConnectionLimit:
    """Open connections per key (client address), at most `limit` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def try_acquire(self, key: str) -> bool:
        """Count one more connection for `key` if it has room; checked and counted in one step
        (no await between), so concurrent arrivals cannot all pass the check."""
        held = self._open.get(key, 0)
        if held >= self.limit:
            return False
        self._open[key] = held + 1
        return True

    def release(self, key: str) -> None:
        left = self._open[key] - 1
        if left:
            self._open[key] = left
        else:
            del self._open[key]

    def counts(self) -> dict[str, int]:
        """Open connections per key, now (a copy)."""
        return dict(self._open)

    def __len__(self) -> int:
        """Open connections in all."""
        return sum(self._open.values())


@dataclass(frozen=True)
class WindowCounts:
    """A cluster-wide limit's row (sql/queries/limits.sql): hits in fixed window `window_no`
    (numbered floor(epoch / window)) and in the one before, read at `now_windows` (the epoch in
    windows, on the database's clock)."""

    window_no: int
    hits: int
    previous_hits: int
    now_windows: float

    def current_and_previous(self) -> tuple[int, int]:
        """(hits in the window `now_windows` is in, hits in the one before)."""
        current = math.floor(self.now_windows)
        if self.window_no == current:
            return self.hits, self.previous_hits
        if self.window_no == current - 1:
            return 0, self.hits
        return 0, 0

    def estimate(self) -> float:
        """Hits in the sliding window ending now, as the database estimates them: the previous
        fixed window weighted by its share still inside, plus the current one."""
        current, previous = self.current_and_previous()
        into = self.now_windows - math.floor(self.now_windows)
        return previous * (1 - into) + current


TICK = 0.001  # seconds: a wait is never 0, and lands just past the moment it was worked out for


def weighted_retry_after(counts: WindowCounts | None, limit: int, window: float) -> float:
    """Seconds until the database's estimate (the previous window's hits weighted by its share
    still inside the sliding window, plus the current window's) drops below `limit`, if no
    further hit is counted meanwhile."""
    if counts is None:
        return TICK
    current, previous = counts.current_and_previous()
    into = counts.now_windows - math.floor(counts.now_windows)  # share of this window gone by
    if current >= limit:
        # Only the next window frees room: there this window's hits are the weighted ones.
        allowed_at = 1 + (1 - limit / current)
    elif previous:
        allowed_at = 1 - (limit - current) / previous
    else:
        allowed_at = 0
    return max(allowed_at - into, 0) * window + TICK
