"""Delivery outcomes: the status-code contract, Retry-After, backoff bounds, giving up."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest

from chatd.core.delivery import (
    Decision,
    Verdict,
    classify_status,
    decide,
    parse_retry_after,
    retry_delay,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (201, Verdict.DELIVERED),
        (202, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (299, Verdict.DELIVERED),
        (301, Verdict.DEAD),
        (302, Verdict.DEAD),
        (304, Verdict.DEAD),
        (307, Verdict.DEAD),
        (308, Verdict.DEAD),
        (400, Verdict.DEAD),
        (401, Verdict.DEAD),
        (403, Verdict.DEAD),
        (404, Verdict.RETRY),
        (405, Verdict.DEAD),
        (408, Verdict.RETRY),
        (409, Verdict.RETRY),
        (410, Verdict.DEAD),
        (413, Verdict.DEAD),
        (415, Verdict.DEAD),
        (422, Verdict.DEAD),
        (423, Verdict.RETRY),
        (425, Verdict.RETRY),
        (429, Verdict.RETRY),
        (451, Verdict.DEAD),
        (499, Verdict.DEAD),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (504, Verdict.RETRY),
        (599, Verdict.RETRY),
        (100, Verdict.RETRY),
        (600, Verdict.RETRY),
    ],
)
def test_status_contract(status: int, verdict: Verdict) -> None:
    assert classify_status(status) is verdict


# --- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("  7 ", 7.0),
        ("1.5", 1.5),
        ("-5", 0.0),
        ("86400", 86_400.0),
        ("86401", 86_400.0),
        ("9" * 90, 86_400.0),
    ],
)
def test_retry_after_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_retry_after_http_date_is_relative_to_now() -> None:
    later = datetime(2025, 3, 1, 12, 2, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(later, usegmt=True), now=NOW) == 120.0
    assert parse_retry_after("Sat, 01 Mar 2025 12:00:30 GMT", now=NOW) == 30.0
    assert parse_retry_after("Sat, 01 Mar 2025 12:00:30 -0000", now=NOW) == 30.0
    assert parse_retry_after("Sat, 01 Mar 2025 14:00:30 +0200", now=NOW) == 30.0
    assert parse_retry_after("Saturday, 01-Mar-25 12:01:00 GMT", now=NOW) == 60.0
    assert parse_retry_after("Sat, 01 Mar 2025 12:00:30 GMT", now=NOW + 0.5) == 29.5


def test_retry_after_date_in_the_past_is_zero_and_far_future_is_capped() -> None:
    assert parse_retry_after("Sat, 01 Mar 2025 11:00:00 GMT", now=NOW) == 0.0
    assert parse_retry_after("Fri, 01 Mar 2030 12:00:00 GMT", now=NOW) == 86_400.0


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "soon",
        "nan",
        "inf",
        "1e3",
        "0x10",
        "\u0661\u0662\u0660",  # Unicode digits float() would take
        "Wed, 32 Oct 2015 07:28:00 GMT",
        "Wed, 21 Oct 99999 07:28:00 GMT",
        "9" * 101,
        "<html>" * 1000,
        "\x00",
    ],
)
def test_retry_after_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


# --- retry_delay -------------------------------------------------------------------------------


@pytest.mark.parametrize("rand", [0.0, 0.3, 0.999999])
@pytest.mark.parametrize("attempt", [1, 2, 3, 6, 20, 10_000])
def test_delay_has_equal_jitter_within_half_and_full(attempt: int, rand: float) -> None:
    ceiling = min(60.0, 2.0 * 2 ** min(attempt - 1, 62))
    delay = retry_delay(attempt, base=2.0, cap=60.0, rand=rand, retry_after=None)
    assert ceiling / 2 <= delay <= ceiling


def test_jitter_spreads_the_delay() -> None:
    low = retry_delay(3, base=1.0, cap=60.0, rand=0.0, retry_after=None)
    high = retry_delay(3, base=1.0, cap=60.0, rand=0.999, retry_after=None)
    assert (low, high) == (2.0, pytest.approx(3.998))


def test_retry_after_is_a_floor_not_a_ceiling() -> None:
    assert retry_delay(1, base=1.0, cap=60.0, rand=0.0, retry_after=30.0) == 30.0
    assert retry_delay(6, base=1.0, cap=60.0, rand=0.999, retry_after=1.0) > 30.0
    assert retry_delay(1, base=1.0, cap=60.0, rand=0.0, retry_after=0.0) == 0.5


def test_retry_after_is_honoured_above_cap_up_to_an_hour() -> None:
    assert retry_delay(1, base=1.0, cap=60.0, rand=0.0, retry_after=600.0) == 600.0
    assert retry_delay(1, base=1.0, cap=60.0, rand=0.0, retry_after=86_400.0) == 3_600.0


# --- decide ------------------------------------------------------------------------------------


def run(**overrides: Any) -> Decision:
    args: dict[str, Any] = {
        "status": None,
        "error": None,
        "attempt": 1,
        "max_attempts": 5,
        "retry_after": None,
        "base": 1.0,
        "cap": 60.0,
        "rand": 0.0,
    }
    return decide(**{**args, **overrides})


def test_delivered() -> None:
    assert run(status=200) == Decision(Verdict.DELIVERED, 0.0, "HTTP 200")
    # The last attempt succeeding is still a success.
    assert run(status=204, attempt=5).verdict is Verdict.DELIVERED


def test_dead_at_once_without_retrying() -> None:
    assert run(status=401) == Decision(Verdict.DEAD, 0.0, "HTTP 401")
    assert run(status=302, attempt=1, max_attempts=10).verdict is Verdict.DEAD


def test_retry_with_backoff() -> None:
    assert run(status=503, attempt=3) == Decision(Verdict.RETRY, 2.0, "HTTP 503")


@pytest.mark.parametrize(
    "error", ["timeout after 10s", "connection refused", "connection reset by peer"]
)
def test_no_response_is_retried_with_its_reason(error: str) -> None:
    assert run(error=error) == Decision(Verdict.RETRY, 0.5, error)


def test_no_status_and_no_error_still_retries() -> None:
    assert run() == Decision(Verdict.RETRY, 0.5, "no response")


def test_error_text_joins_a_status() -> None:
    assert run(status=502, error="body too large").reason == "HTTP 502: body too large"


def test_retry_after_dominates_the_backoff() -> None:
    assert run(status=429, retry_after=120.0) == Decision(Verdict.RETRY, 120.0, "HTTP 429")
    assert run(status=503, retry_after=10_000.0).delay == 3_600.0


@pytest.mark.parametrize(("attempt", "max_attempts"), [(5, 5), (6, 5), (1, 1)])
def test_attempts_exhausted_is_dead(attempt: int, max_attempts: int) -> None:
    decision = run(status=503, attempt=attempt, max_attempts=max_attempts, retry_after=30.0)
    assert decision == Decision(Verdict.DEAD, 0.0, f"gave up after {attempt} attempts: HTTP 503")
    timeout = run(error="timeout after 10s", attempt=attempt, max_attempts=max_attempts)
    assert timeout.reason == f"gave up after {attempt} attempts: timeout after 10s"


def test_one_before_the_limit_still_retries() -> None:
    assert run(status=500, attempt=4, max_attempts=5).verdict is Verdict.RETRY


@pytest.mark.parametrize(("attempt", "max_attempts"), [(0, 5), (1, 0)])
def test_counts_are_one_based(attempt: int, max_attempts: int) -> None:
    with pytest.raises(ValueError, match="1-based"):
        run(status=200, attempt=attempt, max_attempts=max_attempts)
