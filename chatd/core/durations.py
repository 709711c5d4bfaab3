"""Human durations and moments on the command line: "90s", "30m", "12h", "7d", plain seconds,
or an ISO date."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError with a hint otherwise."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 12h, 7d)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_when(text: str, now: datetime) -> datetime:
    """An ISO date or date-time (UTC unless it names a zone), or a duration back from `now`."""
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"not a date, time or duration: {text!r}"
            " (use e.g. 2026-11-01, 2026-11-01T10:00:00Z, 7d or 12h)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
