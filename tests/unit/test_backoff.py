"""Exponential backoff with equal jitter: bounds, cap, and argument checks."""

from __future__ import annotations

import math

import pytest

from chatd.core.backoff import exponential_backoff


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0)])
def test_equal_jitter_spans_half_to_full_delay(attempt: int, ceiling: float) -> None:
    low = exponential_backoff(attempt, base=1.0, cap=1000.0, rand=0.0)
    high = exponential_backoff(attempt, base=1.0, cap=1000.0, rand=0.999999)
    assert low == ceiling / 2
    assert high == pytest.approx(ceiling, rel=1e-5)
    assert high < ceiling


def test_jitter_is_linear_in_rand() -> None:
    assert exponential_backoff(3, base=0.5, cap=100.0, rand=0.5) == pytest.approx(1.5)


@pytest.mark.parametrize("rand", [0.0, 0.25, 0.5, 0.75, 0.999])
def test_every_draw_is_within_half_and_full_delay(rand: float) -> None:
    for attempt in range(1, 40):
        ceiling = min(30.0, 0.2 * 2 ** (attempt - 1))
        delay = exponential_backoff(attempt, base=0.2, cap=30.0, rand=rand)
        assert ceiling / 2 <= delay <= ceiling


def test_delay_never_decreases_with_attempts_for_a_fixed_draw() -> None:
    delays = [exponential_backoff(n, base=1.0, cap=60.0, rand=0.3) for n in range(1, 50)]
    assert delays == sorted(delays)


@pytest.mark.parametrize("attempt", [7, 64, 1_000, 10_000, 10**9])
def test_cap_holds_for_huge_attempts(attempt: int) -> None:
    assert exponential_backoff(attempt, base=1.0, cap=30.0, rand=0.0) == 15.0
    top = exponential_backoff(attempt, base=1.0, cap=30.0, rand=0.999)
    assert math.isfinite(top)
    assert top <= 30.0


def test_cap_below_base_caps_the_first_attempt() -> None:
    assert exponential_backoff(1, base=10.0, cap=4.0, rand=0.0) == 2.0


@pytest.mark.parametrize("attempt", [0, -1, -100])
def test_attempt_is_one_based(attempt: int) -> None:
    with pytest.raises(ValueError, match="1-based"):
        exponential_backoff(attempt, base=1.0, cap=30.0, rand=0.5)
