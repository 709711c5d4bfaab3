"""Sliding-window rate limits: exact boundaries, retry_after, per-key isolation, bounded memory."""

from __future__ import annotations

import pytest

from chatd.core.ratelimit import (
    ConnectionLimit,
    KeyedLimiter,
    SlidingWindow,
    WindowCounts,
    weighted_retry_after,
)


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


def test_a_connection_is_checked_and_counted_in_one_step() -> None:
    limit = ConnectionLimit(2)
    assert limit.try_acquire("1.2.3.4")
    assert limit.try_acquire("1.2.3.4")
    assert not limit.try_acquire("1.2.3.4")  # refused, and not counted
    assert limit.try_acquire("5.6.7.8")
    assert (len(limit), limit.counts()) == (3, {"1.2.3.4": 2, "5.6.7.8": 1})
    limit.release("1.2.3.4")
    assert limit.try_acquire("1.2.3.4")
    for _ in range(2):
        limit.release("1.2.3.4")
    limit.release("5.6.7.8")
    assert (len(limit), limit.counts()) == (0, {})  # empty keys are forgotten


def test_the_weighted_estimate_counts_the_previous_window_by_its_overlap() -> None:
    # 10 hits in window 99, 4 in window 100, read a quarter into window 100.
    counts = WindowCounts(window_no=100, hits=4, previous_hits=10, now_windows=100.25)
    assert counts.current_and_previous() == (4, 10)
    assert counts.estimate() == pytest.approx(10 * 0.75 + 4)
    # The same row read a window later: its hits are now the previous window's.
    later = WindowCounts(window_no=100, hits=4, previous_hits=10, now_windows=101.5)
    assert later.current_and_previous() == (0, 4)
    assert later.estimate() == pytest.approx(2.0)
    # Two windows later it counts nothing.
    assert WindowCounts(100, 4, 10, 102.0).estimate() == 0


def test_retry_after_is_when_the_estimate_drops_below_the_limit() -> None:
    # limit 10 over 60 s; estimate 7.5 + 4 = 11.5 at a quarter in. It falls by 10 per window:
    # below 10 once 10 * (1 - t) + 4 < 10, t > 0.4, i.e. 0.15 windows = 9 s from now.
    counts = WindowCounts(window_no=100, hits=4, previous_hits=10, now_windows=100.25)
    assert weighted_retry_after(counts, 10, 60.0) == pytest.approx(9.0, abs=0.01)
    # The current window alone is at the limit: only the next one frees room, and there this
    # window's 10 hits weigh in by their overlap: below 10 just past the next window's start.
    full = WindowCounts(window_no=100, hits=10, previous_hits=0, now_windows=100.5)
    assert weighted_retry_after(full, 10, 60.0) == pytest.approx(30.0, abs=0.01)
    over = WindowCounts(window_no=100, hits=20, previous_hits=0, now_windows=100.5)
    assert weighted_retry_after(over, 10, 60.0) == pytest.approx(30.0 + 30.0, abs=0.01)
    assert 0 < weighted_retry_after(None, 10, 60.0) < 0.01  # the row went meanwhile: at once
