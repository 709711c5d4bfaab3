"""Conversation insights from hourly figures: the window a query asks for, hours merged into its
buckets (hours or local days), and answer-time quantiles from summed histograms.

Hours are UTC hours, as PostgreSQL rolls them up (chatd/db/analytics.py). A local day is the
hours whose start falls on that date in the asked time zone (exact for whole-hour offsets; in
zones with half-hour offsets a day is taken to the hour). Time comes in as an argument.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import operator
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from chatd.errors import BadRequest

HOUR = timedelta(hours=1)
# Answer-time buckets (seconds): bucket i holds ANSWER_BOUNDS[i-1] <= t < ANSWER_BOUNDS[i], the
# last one everything from 941 s on. Each bound is 1.2 times the one before, so a quantile read
# from summed buckets is within 20 % of the exact one.
ANSWER_BOUNDS: tuple[float, ...] = tuple(round(0.05 * 1.2**k, 4) for k in range(55))
RANGE_DAYS = {"1d": 1, "7d": 7, "30d": 30}
MAX_DAYS = 400
MAX_HOURLY_DAYS = 31  # hour buckets up to this span (744 points)

Bucket = Literal["hour", "day"]


@dataclass(frozen=True)
class Window:
    """What a query covers: [start, end) in UTC, cut into buckets of `bucket` in `tz`."""

    start: datetime
    end: datetime
    bucket: Bucket
    tz: str

    def bucket_starts(self) -> list[datetime]:
        """Every bucket's start (UTC), in order; each bucket holds the hours up to the next."""
        return list(dict.fromkeys(self.hours().values()))

    def hours(self) -> dict[datetime, datetime]:
        """Every hour of the window (UTC) and the start of its bucket, in order."""
        zone = zoneinfo.ZoneInfo(self.tz)
        found: dict[datetime, datetime] = {}
        hour = self.start
        while hour < self.end:
            found[hour] = self.bucket_of(hour, zone)
            hour += HOUR
        return found

    def bucket_of(self, hour: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
        if self.bucket == "hour":
            return hour
        local = hour.astimezone(zone)
        return local_midnight(local.date(), zone)


def local_midnight(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first whole UTC hour of `day` in `zone`."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    return midnight.replace(minute=0, second=0, microsecond=0)


@functools.cache
def time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def parse_window(
    *,
    range_: str | None,
    start: str | None,
    end: str | None,
    bucket: Bucket | None,
    tz: str,
    now: datetime,
) -> Window:
    """The window of a query: `range_` (1d, 7d, 30d: up to now) or `start`..`end` (dates, both
    days included); hour buckets for a day or two, else days. BadRequest naming the parameter."""
    if tz not in time_zones():
        raise _refused("tz must be an IANA time zone, e.g. Europe/Berlin", "tz")
    zone = zoneinfo.ZoneInfo(tz)
    this_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if range_ is not None and (start is not None or end is not None):
        raise _refused("give either range or start and end, not both", "range")
    if start is not None or end is not None:
        first, last = _day(start, "start"), _day(end, "end")
        if last < first:
            raise _refused("end is before start", "end")
        if (last - first).days + 1 > MAX_DAYS:
            raise _refused(f"at most {MAX_DAYS} days at once", "end")
        window_start = local_midnight(first, zone)
        window_end = min(local_midnight(last + timedelta(days=1), zone), this_hour + HOUR)
        window_end = max(window_end, window_start)
    else:
        days = RANGE_DAYS[range_ or "7d"]
        window_end = this_hour + HOUR
        if days == 1:
            window_start = window_end - 24 * HOUR
        else:
            window_start = local_midnight(now.astimezone(zone).date() - timedelta(days - 1), zone)
    span_days = (window_end - window_start) / timedelta(days=1)
    chosen: Bucket = bucket or ("hour" if span_days <= 2 else "day")
    if chosen == "hour" and span_days > MAX_HOURLY_DAYS:
        raise _refused(
            f"hour buckets cover at most {MAX_HOURLY_DAYS} days; use bucket=day", "bucket"
        )
    return Window(window_start, window_end, chosen, tz)


def _refused(message: str, name: str) -> BadRequest:
    return BadRequest(message, code="invalid_query", field=name)


def _day(text: str | None, name: str) -> date:
    if text is None:
        raise _refused(f"{name} is required with the other one", name)
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise _refused(f"{name} must be a date, YYYY-MM-DD", name)


@dataclass(frozen=True)
class Hourly:
    """One hour's figures, rolled up or aggregated live; their sum is a bucket's."""

    hour: datetime
    conversations: int = 0
    user_messages: int = 0
    bot_messages: int = 0
    system_messages: int = 0
    answers: int = 0
    answer_seconds: float = 0.0
    answer_buckets: tuple[int, ...] = ()  # counts per ANSWER_BOUNDS bucket; () for none
    dead_letters: int = 0
    retries: int = 0
    ratings: tuple[int, ...] = (0, 0, 0, 0, 0)  # by value 1..5


@dataclass
class Figures:
    """Sums over some hours."""

    conversations: int = 0
    user_messages: int = 0
    bot_messages: int = 0
    system_messages: int = 0
    answers: int = 0
    answer_seconds: float = 0.0
    answer_buckets: list[int] = field(default_factory=lambda: [0] * (len(ANSWER_BOUNDS) + 1))
    dead_letters: int = 0
    retries: int = 0
    ratings: list[int] = field(default_factory=lambda: [0] * 5)

    def add(self, row: Hourly | Figures) -> None:
        self.conversations += row.conversations
        self.user_messages += row.user_messages
        self.bot_messages += row.bot_messages
        self.system_messages += row.system_messages
        self.answers += row.answers
        self.answer_seconds += row.answer_seconds
        self.answer_buckets = _plus(self.answer_buckets, row.answer_buckets)
        self.dead_letters += row.dead_letters
        self.retries += row.retries
        self.ratings = _plus(self.ratings, row.ratings)

    def quantile(self, q: float) -> float | None:
        return quantile(self.answer_buckets, q)

    @property
    def rating_count(self) -> int:
        return sum(self.ratings)

    @property
    def rating_average(self) -> float | None:
        count = self.rating_count
        if not count:
            return None
        return round(sum((i + 1) * n for i, n in enumerate(self.ratings)) / count, 2)


def _plus(sums: list[int], more: Sequence[int]) -> list[int]:
    """`sums` plus `more`, element by element (`more` may be empty: an hour without answers).
    In C (map) rather than a Python loop: 30 days are 720 hours of 56 buckets."""
    if len(more) == len(sums):
        return list(map(operator.add, sums, more))
    for i, n in enumerate(more):
        sums[i] += n
    return sums


def merge(window: Window, rows: Iterable[Hourly]) -> tuple[list[tuple[datetime, Figures]], Figures]:
    """Each bucket's sums (every bucket of the window, empty ones too) and the whole window's."""
    bucket_of = window.hours()
    buckets = {start: Figures() for start in dict.fromkeys(bucket_of.values())}
    for row in rows:
        if (key := bucket_of.get(row.hour)) is not None:  # else outside the window
            buckets[key].add(row)
    total = Figures()
    for figures in buckets.values():
        total.add(figures)
    return list(buckets.items()), total


def bucket_index(seconds: float) -> int:
    """The answer-time bucket of a value (the same as PostgreSQL's width_bucket over the bounds)."""
    return bisect.bisect_right(ANSWER_BOUNDS, seconds)


def quantile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q < 1) of values counted in ANSWER_BOUNDS buckets, interpolated
    linearly within its bucket (from 0 for the first; the last bucket answers its lower bound).
    None when nothing was counted."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    cumulative = list(itertools.accumulate(counts))
    i = bisect.bisect_left(cumulative, rank)
    i = min(i, len(counts) - 1)
    while counts[i] == 0:  # rank 0 lands before the first value: take its bucket
        i += 1
    if i >= len(ANSWER_BOUNDS):
        return ANSWER_BOUNDS[-1]
    low = ANSWER_BOUNDS[i - 1] if i else 0.0
    high = ANSWER_BOUNDS[i]
    before = cumulative[i] - counts[i]
    value = low + (high - low) * (rank - before) / counts[i]
    return round(value, 3) if math.isfinite(value) else None


def top(counts: Iterable[tuple[str, int]], limit: int) -> list[tuple[str, int]]:
    """The `limit` largest, ties by name: the same order for the same numbers."""
    summed: dict[str, int] = {}
    for name, n in counts:
        summed[name] = summed.get(name, 0) + n
    return sorted(summed.items(), key=lambda item: (-item[1], item[0]))[:limit]
