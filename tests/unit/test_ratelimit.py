"""Sliding-window rate limits: exact boundaries, retry_after, per-key isolation, bounded memory."""

from __future__ import annotations

import pytest

from chatd.core.ratelimit import KeyedLimiter, SlidingWindow


def hit(window: SlidingWindow, now: float) -> float | None:
    wait = window.retry_after(now)
    if wait is None:
        window.record(now)
    return wait


def test_allows_limit_hits_then_waits_for_the_oldest_to_expire() -> None:
    window = SlidingWindow(3, 10.0)
    assert [hit(window, t) for t in (0.0, 1.0, 2.0)] == [None, None, None]
    assert hit(window, 4.0) == pytest.approx(6.0)  # the hit at 0 expires at 10
    assert hit(window, 9.5) == pytest.approx(0.5)


def test_window_slides_rather_than_resetting_in_buckets() -> None:
    window = SlidingWindow(10, 60.0)
    for t in range(10):
        assert hit(window, float(t)) is None
    assert hit(window, 59.9) == pytest.approx(0.1)
    assert hit(window, 60.0) is None  # the hit at t=0 has left the window
    assert hit(window, 60.0) == pytest.approx(1.0)  # t=1 is now the oldest
    assert hit(window, 60.5) == pytest.approx(0.5)
    assert hit(window, 61.0) is None
    # A fixed 60 s bucket would have allowed a burst of 10 at t=60; the sliding window did not.


def test_refused_hits_are_not_counted() -> None:
    window = SlidingWindow(1, 10.0)
    assert hit(window, 0.0) is None
    for t in (1.0, 2.0, 9.0):
        assert hit(window, t) is not None
    assert hit(window, 10.0) is None


def test_is_empty_once_every_hit_has_expired() -> None:
    window = SlidingWindow(2, 5.0)
    assert window.is_empty(0.0)
    window.record(0.0)
    assert not window.is_empty(4.9)
    assert window.is_empty(5.0)


def test_keys_are_isolated() -> None:
    limiter = KeyedLimiter(2, 60.0)
    assert limiter.hit("a", 0.0) is None
    assert limiter.hit("a", 1.0) is None
    assert limiter.hit("a", 2.0) == pytest.approx(58.0)
    assert limiter.hit("b", 2.0) is None
    assert limiter.hit("b", 3.0) is None
    assert limiter.hit("b", 4.0) == pytest.approx(58.0)
    assert limiter.hit("a", 60.0) is None


def test_empty_windows_are_swept_so_memory_stays_bounded() -> None:
    limiter = KeyedLimiter(5, 1.0, sweep_at=10)
    sizes = []
    for i in range(100):
        assert limiter.hit(f"ip-{i}", i * 2.0) is None
        sizes.append(len(limiter))
    assert max(sizes) == 10
    assert sizes[10] == 1  # the 11th key found 10 expired windows and swept them all


def test_sweep_keeps_windows_that_still_hold_hits() -> None:
    limiter = KeyedLimiter(1, 100.0, sweep_at=3)
    for key in ("a", "b", "c"):
        assert limiter.hit(key, 0.0) is None
    assert limiter.hit("d", 1.0) is None  # sweeps, but nothing has expired
    assert len(limiter) == 4
    assert limiter.hit("a", 2.0) == pytest.approx(98.0)  # a's hit survived the sweep


def test_keyed_limiter_sweeps_at_most_once_per_window() -> None:
    limiter = KeyedLimiter(limit=5, window=10.0, sweep_at=3)
    for i in range(3):
        assert limiter.hit(f"k{i}", now=0.0) is None
    # all keys busy: the sweep at t=1 keeps them, and none runs again before t=11
    for i in range(3, 50):
        assert limiter.hit(f"k{i}", now=1.0) is None
    assert len(limiter) == 50
    assert limiter.hit("late", now=12.0) is None  # a window later, the stale keys are swept
    assert len(limiter) == 1


def test_failures_are_recorded_apart_from_the_check() -> None:
    # The operators' tokens: only a wrong one is paid for, and a check records nothing.
    failures = KeyedLimiter(limit=2, window=60.0)
    assert failures.retry_after("1.2.3.4", 0.0) is None
    assert failures.retry_after("1.2.3.4", 0.0) is None  # checking is free
    failures.record("1.2.3.4", 1.0)
    failures.record("1.2.3.4", 2.0)
    assert failures.retry_after("1.2.3.4", 3.0) == pytest.approx(58.0)
    failures.record("1.2.3.4", 3.0)  # recorded even when over the limit: guessing stays costly
    assert failures.retry_after("1.2.3.4", 61.5) == pytest.approx(0.5)
    assert failures.retry_after("1.2.3.4", 62.0) is None
    assert failures.retry_after("5.6.7.8", 3.0) is None  # other addresses are not affected
