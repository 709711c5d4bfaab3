"""A histogram as bucket counts, kept by the component that observes the values.

The metrics collector exports its frozen snapshot (Prometheus' cumulative buckets, `le` = "less
than or equal"); nothing here knows about Prometheus.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class HistogramSnapshot:
    bounds: tuple[float, ...]  # the buckets' upper bounds, ascending (+Inf follows them)
    cumulative: tuple[int, ...]  # values <= each bound, then all of them (+Inf)
    total: float  # the sum of the values

    @property
    def count(self) -> int:
        return self.cumulative[-1]


class Histogram:
    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("histogram bounds must be strictly ascending")
        self._bounds = tuple(bounds)
        self._counts = [0] * (len(self._bounds) + 1)  # per bucket; the last one is above all
        self._total = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self._total += value

    def snapshot(self) -> HistogramSnapshot:
        cumulative = tuple(itertools.accumulate(self._counts))
        return HistogramSnapshot(self._bounds, cumulative, self._total)
