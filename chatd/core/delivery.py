"""How one webhook attempt's outcome decides its job's fate: delivered, retried later, or dead.

Status codes are a contract (RELIABILITY.md 5 and 6); time and the random draw come in as arguments.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from chatd.core.backoff import exponential_backoff

MAX_RETRY_AFTER = 86_400.0  # a parsed Retry-After never exceeds a day
MAX_HONOURED_RETRY_AFTER = 3_600.0  # and a retry never waits more than an hour for it
_DELTA_SECONDS = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_MAX_RETRY_AFTER_TEXT = 100


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"


# 4xx answers that heal without anyone changing chatd's request, so they are worth retrying.
_RETRYABLE_4XX = frozenset(
    {
        404,  # n8n's answer for an inactive or not yet saved workflow: heals on re-activation
        408,  # request timeout
        409,  # conflict: a concurrent change on the receiver's side
        423,  # locked
        425,  # too early
        429,  # rate limited (with Retry-After)
    }
)


def classify_status(status: int) -> Verdict:
    """The fate an HTTP status alone implies for a delivery attempt."""
    if 200 <= status <= 299:
        return Verdict.DELIVERED
    if 300 <= status <= 399:
        # Redirects are not followed: the configured URL is wrong, and resending a signed body
        # to wherever a Location points would leak it.
        return Verdict.DEAD
    if 400 <= status <= 499:
        # Every other 4xx says this request will never be accepted as it is: 400, 401 and 403
        # (n8n's "Authorization data is wrong!" for a bad X-Webhook-Secret), 405, 410, 413, 415,
        # 422 ... Retrying only delays the fallback reply to the shopper.
        return Verdict.RETRY if status in _RETRYABLE_4XX else Verdict.DEAD
    # 5xx is the receiver's trouble. Anything outside 200-599 is not HTTP as we know it (a
    # confused proxy): the outcome is unknown, so retry and let the attempt limit end it.
    return Verdict.RETRY


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date, or None.

    `now` is epoch seconds. A date in the past or a negative delta means 0; the result is capped
    at a day; anything unreadable is None (the header is then simply ignored).
    """
    if value is None:
        return None
    text = value.strip()
    if not text or len(text) > _MAX_RETRY_AFTER_TEXT:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # "-0000" or no zone: RFC 9110 dates are always GMT
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def retry_delay(
    attempt: int, *, base: float, cap: float, rand: float, retry_after: float | None
) -> float:
    """Seconds before the retry after failed attempt number `attempt` (1-based).

    Exponential backoff with equal jitter, but never sooner than the receiver asked: Retry-After
    wins even above `cap`, up to an hour, so one bad header cannot park a lane for a day.
    """
    delay = exponential_backoff(attempt, base=base, cap=cap, rand=rand)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_HONOURED_RETRY_AFTER))
    return delay


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    delay: float  # seconds until the next attempt; 0 unless RETRY
    reason: str


def decide(
    *,
    status: int | None,
    error: str | None,
    attempt: int,
    max_attempts: int,
    retry_after: float | None,
    base: float,
    cap: float,
    rand: float,
) -> Decision:
    """The fate of a job after attempt number `attempt` (1-based) answered `status` or failed.

    `status` None means no HTTP answer at all (timeout, refused, reset): the outcome is unknown,
    so it is retried, which is where duplicates at n8n come from (the webhook-id stays the same).
    """
    if attempt < 1 or max_attempts < 1:
        raise ValueError("attempt and max_attempts are 1-based")
    if status is None:
        verdict, reason = Verdict.RETRY, error or "no response"
    else:
        verdict = classify_status(status)
        reason = f"HTTP {status}" if error is None else f"HTTP {status}: {error}"
    if verdict is not Verdict.RETRY:
        return Decision(verdict, 0.0, reason)
    if attempt >= max_attempts:
        return Decision(Verdict.DEAD, 0.0, f"gave up after {attempt} attempts: {reason}")
    delay = retry_delay(attempt, base=base, cap=cap, rand=rand, retry_after=retry_after)
    return Decision(Verdict.RETRY, delay, reason)
