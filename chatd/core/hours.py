"""Business hours, pure: whether the shop's staff are at work at a given moment, and when they
next are. Times are the shop's wall clock in its IANA time zone (zoneinfo), so opening at 09:00
stays 09:00 across daylight-saving changes; the moment to judge comes in as an argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
CLOSED = "closed"
_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
# Far enough to pass any run of holidays and closed days; past it the shop never opens.
LOOKAHEAD_DAYS = 400

Range = tuple[time, time | None]  # [start, end); end None: midnight at the day's end ("24:00")


@dataclass(frozen=True)
class BusinessHours:
    zone: ZoneInfo
    week: tuple[tuple[Range, ...], ...]  # seven days from Monday; () closed
    holidays: frozenset[date]

    def is_open(self, at: datetime) -> bool:
        """Whether `at` (an aware datetime) falls in an opening range of its local day."""
        local = at.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        now = local.time().replace(tzinfo=None, fold=0)
        return any(
            start <= now and (end is None or now < end) for start, end in self.week[local.weekday()]
        )

    def next_open(self, at: datetime) -> datetime | None:
        """`at` when open, else the next opening (local time, aware); None: never in a year.

        An opening that falls in a spring-forward gap (02:30 on the night clocks jump from 02:00
        to 03:00) is the moment the gap ends onto (03:30 local), as the wall clock shows it."""
        if self.is_open(at):
            return at
        local = at.astimezone(self.zone)
        for offset in range(LOOKAHEAD_DAYS):
            day = local.date() + timedelta(days=offset)
            if day in self.holidays:
                continue
            for start, _ in self.week[day.weekday()]:
                opening = datetime.combine(day, start, tzinfo=self.zone)
                opening = opening.astimezone(UTC).astimezone(self.zone)  # out of a DST gap
                if opening > at:
                    return opening
        return None


def parse_day(value: str) -> tuple[Range, ...]:
    """'09:00-12:00, 13:00-17:30' (ranges in order, not overlapping), '00:00-24:00' or 'closed'.
    ValueError says what is wrong."""
    text = value.strip().lower()
    if text == CLOSED:
        return ()
    ranges: list[Range] = []
    for part in (p.strip() for p in text.split(",")):
        match = _RANGE.fullmatch(part)
        if match is None:
            raise ValueError(
                f"{part!r} is not a range like 09:00-17:00; write ranges as"
                ' "09:00-12:00, 13:00-17:00", or "closed"'
            )
        h1, m1, h2, m2 = map(int, match.groups())
        start = _clock(h1, m1, part)
        end = None if (h2, m2) == (24, 0) else _clock(h2, m2, part)  # 24:00: the day's end
        if end is not None and end <= start:
            raise ValueError(
                f"{part!r} ends before it starts; a range past midnight is two: "
                '"22:00-24:00" on one day and "00:00-02:00" on the next'
            )
        previous_end = ranges[-1][1] if ranges else time(0)
        if previous_end is None or start < previous_end:
            raise ValueError(f"{part!r} overlaps or precedes the range before it")
        ranges.append((start, end))
    return tuple(ranges)


def _clock(hour: int, minute: int, part: str) -> time:
    if hour > 23 or minute > 59:
        raise ValueError(f"{part!r}: {hour:02d}:{minute:02d} is not a time of day")
    return time(hour, minute)


def parse_zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{value!r} is not an IANA time zone, e.g. Europe/Berlin, America/New_York, UTC"
        ) from None


def parse_holidays(value: str) -> frozenset[date]:
    """Comma-separated dates, YYYY-MM-DD."""
    days = set()
    for part in (p.strip() for p in value.split(",") if p.strip()):
        try:
            days.add(date.fromisoformat(part))
        except ValueError:
            raise ValueError(f"{part!r} is not a date like 2026-12-25") from None
    return frozenset(days)


def when(opening: datetime, now: datetime) -> str:
    """An opening as a shopper reads it, in the shop's time: 'today at 09:00', 'tomorrow at
    09:00', 'Monday 09:00', '24 December 09:00' (a week or more away)."""
    local_now = now.astimezone(opening.tzinfo)
    days = (opening.date() - local_now.date()).days
    clock = opening.strftime("%H:%M")
    if days == 0:
        return f"today at {clock}"
    if days == 1:
        return f"tomorrow at {clock}"
    if days < 7:
        return f"{DAY_NAMES[opening.weekday()]} {clock}"
    return f"{opening.day} {opening.strftime('%B')} {clock}"
