"""Sliding-window rate limits (a log of recent hits); the clock comes in as `now` (seconds)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


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

    def full(self, key: str) -> bool:
        return self._open.get(key, 0) >= self.limit

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Count one connection for the duration of the block."""
        self._open[key] = self._open.get(key, 0) + 1
        try:
            yield
        finally:
            self._open[key] -= 1
            if not self._open[key]:
                del self._open[key]

    def __len__(self) -> int:
        """Open connections in all."""
        return sum(self._open.values())
