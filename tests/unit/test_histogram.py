"""Bucket counts (chatd/core/histogram.py): Prometheus' cumulative `le` buckets, sum and count."""

from __future__ import annotations

import pytest

from chatd.core.histogram import Histogram


def test_buckets_are_cumulative_and_inclusive_of_their_bound() -> None:
    histogram = Histogram([0.5, 1.0, 5.0])
    for value in (0.1, 0.5, 0.7, 1.0, 4.0, 300.0):
        histogram.observe(value)
    snapshot = histogram.snapshot()
    assert snapshot.bounds == (0.5, 1.0, 5.0)
    assert snapshot.cumulative == (2, 4, 5, 6)  # <= 0.5, <= 1, <= 5, everything
    assert snapshot.count == 6
    assert snapshot.total == pytest.approx(306.3)


def test_a_snapshot_is_frozen_in_time() -> None:
    histogram = Histogram([1.0])
    before = histogram.snapshot()
    histogram.observe(0.2)
    assert (before.cumulative, before.total) == ((0, 0), 0.0)
    assert histogram.snapshot().cumulative == (1, 1)


@pytest.mark.parametrize("bounds", [[1.0, 0.5], [1.0, 1.0]])
def test_bounds_must_ascend(bounds: list[float]) -> None:
    with pytest.raises(ValueError, match="ascending"):
        Histogram(bounds)
