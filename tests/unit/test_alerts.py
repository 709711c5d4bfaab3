"""The guide's alert rules, pure: thresholds (strictly above), the failure minimum, cooldown
arithmetic, and the Slack-compatible payload."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chatd.ops.alerts import (
    FAILURE_RATE,
    QUEUE_DELAY,
    RESPONSE_TIME,
    RULES,
    Figures,
    Firing,
    Severity,
    due,
    evaluate,
    rules,
    slack_payload,
)
from chatd.settings import AlertSettings

NOW = datetime(2026, 11, 24, 22, 48, 59, 317099, tzinfo=UTC)
CONFIG = AlertSettings()
QUIET = Figures(
    measured_at=NOW,
    window_seconds=300.0,
    attempts=100,
    failed_attempts=0,
    queue_delay_seconds=0.0,
    replies=10,
    response_time_seconds=1.0,
)


def fired(figures: Figures, config: AlertSettings = CONFIG) -> dict[str, float]:
    return {f.rule.id: f.value for f in evaluate(figures, config)}


def test_rules_are_the_guides() -> None:
    assert [(r.id, r.severity, r.threshold, r.cooldown_seconds) for r in RULES] == [
        (FAILURE_RATE, Severity.CRITICAL, 0.05, 900.0),
        (QUEUE_DELAY, Severity.WARNING, 30.0, 600.0),
        (RESPONSE_TIME, Severity.WARNING, 5.0, 300.0),
    ]


def test_rules_take_thresholds_and_cooldowns_from_settings() -> None:
    config = AlertSettings(
        failure_rate=0.2,
        failure_rate_cooldown_seconds=1,
        queue_delay_seconds=2,
        queue_delay_cooldown_seconds=3,
        response_time_seconds=4,
        response_time_cooldown_seconds=5,
    )
    assert [(r.threshold, r.cooldown_seconds) for r in rules(config)] == [
        (0.2, 1.0),
        (2.0, 3.0),
        (4.0, 5.0),
    ]


def test_healthy_figures_fire_nothing() -> None:
    assert evaluate(QUIET, CONFIG) == []


def test_no_traffic_fires_nothing() -> None:
    idle = replace(QUIET, attempts=0, failed_attempts=0, replies=0, response_time_seconds=None)
    assert idle.failure_rate is None
    assert evaluate(idle, CONFIG) == []


@pytest.mark.parametrize(
    ("failed", "fires"),
    [(4, False), (5, False), (6, True), (100, True)],  # of 100 attempts: 5 % is not above 5 %
)
def test_failure_rate_fires_strictly_above_the_threshold(failed: int, fires: bool) -> None:
    result = fired(replace(QUIET, failed_attempts=failed))
    assert (FAILURE_RATE in result) is fires
    if fires:
        assert result[FAILURE_RATE] == pytest.approx(failed / 100)


@pytest.mark.parametrize(("attempts", "fires"), [(1, False), (19, False), (20, True), (21, True)])
def test_failure_rate_needs_the_minimum_of_attempts(attempts: int, fires: bool) -> None:
    all_failed = replace(QUIET, attempts=attempts, failed_attempts=attempts)
    assert (FAILURE_RATE in fired(all_failed)) is fires


def test_failure_minimum_comes_from_settings() -> None:
    few = replace(QUIET, attempts=3, failed_attempts=1)
    assert FAILURE_RATE not in fired(few)
    assert fired(few, AlertSettings(failure_min_attempts=3))[FAILURE_RATE] == pytest.approx(1 / 3)


@pytest.mark.parametrize(("delay", "fires"), [(0.0, False), (30.0, False), (30.001, True)])
def test_queue_delay_fires_strictly_above_the_threshold(delay: float, fires: bool) -> None:
    result = fired(replace(QUIET, queue_delay_seconds=delay))
    assert (QUEUE_DELAY in result) is fires
    if fires:
        assert result[QUEUE_DELAY] == delay


@pytest.mark.parametrize(("average", "fires"), [(None, False), (5.0, False), (5.01, True)])
def test_response_time_fires_strictly_above_the_threshold(
    average: float | None, fires: bool
) -> None:
    result = fired(replace(QUIET, response_time_seconds=average))
    assert (RESPONSE_TIME in result) is fires


def test_all_three_fire_together_in_rule_order() -> None:
    bad = replace(QUIET, failed_attempts=50, queue_delay_seconds=60, response_time_seconds=9)
    firings = evaluate(bad, CONFIG)
    assert [f.rule.id for f in firings] == [FAILURE_RATE, QUEUE_DELAY, RESPONSE_TIME]
    assert all(f.at == NOW and f.window_seconds == 300.0 for f in firings)
    assert firings[0].detail == "50 of 100 attempts failed in the last 5 min"
    assert firings[2].detail == "average of 10 replies in the last 5 min"


def firing(rule_index: int = 0, cooldown: float | None = None) -> Firing:
    rule = RULES[rule_index]
    if cooldown is not None:
        rule = replace(rule, cooldown_seconds=cooldown)
    return Firing(rule, 0.5, NOW, 300.0, "")


def test_a_rule_that_never_fired_is_due() -> None:
    assert due(firing(), None, NOW)


@pytest.mark.parametrize(
    ("ago", "is_due"),
    [
        (timedelta(0), False),
        (timedelta(minutes=14, seconds=59), False),
        (timedelta(minutes=15) - timedelta(microseconds=1), False),
        (timedelta(minutes=15), True),  # the same `<=` as claim_alert in sql/queries/alerts.sql
        (timedelta(hours=3), True),
    ],
)
def test_cooldown_is_the_rules_own(ago: timedelta, is_due: bool) -> None:
    assert due(firing(0), NOW - ago, NOW) is is_due  # high_webhook_failure_rate: 15 min


def test_each_rule_has_its_cooldown() -> None:
    six_minutes_ago = NOW - timedelta(minutes=6)
    assert [due(firing(i), six_minutes_ago, NOW) for i in range(3)] == [False, False, True]


def test_zero_cooldown_is_always_due() -> None:
    assert due(firing(cooldown=0), NOW, NOW)


def test_payload_is_one_line_of_text_plus_the_facts() -> None:
    bad = replace(QUIET, failed_attempts=12, attempts=96)
    (high_failure,) = evaluate(bad, CONFIG)
    payload = slack_payload(high_failure, "chat1:8000")
    assert set(payload) == {"text", "alert"}
    assert payload["text"] == (
        "[CRITICAL] High webhook failure rate on chatd chat1:8000: 12.5 % > 5 % "
        "(12 of 96 attempts failed in the last 5 min)"
    )
    assert payload["alert"] == {
        "id": "high_webhook_failure_rate",
        "name": "High webhook failure rate",
        "severity": "critical",
        "value": 0.125,
        "threshold": 0.05,
        "windowSeconds": 300.0,
        "firedAt": "2026-11-24T22:48:59.317099Z",
        "instance": "chat1:8000",
    }
    assert json.loads(json.dumps(payload)) == payload  # plain JSON, nothing Slack would choke on


def test_payload_text_for_the_seconds_rules() -> None:
    bad = replace(QUIET, queue_delay_seconds=42.04, replies=1, response_time_seconds=6.24)
    texts = [slack_payload(f, "h")["text"] for f in evaluate(bad, CONFIG)]
    assert texts == [
        "[WARNING] Queue processing delay on chatd h: 42 s > 30 s (the longest-waiting due job)",
        "[WARNING] High response time on chatd h: 6.2 s > 5 s (average of 1 reply in the last 5 min)",
    ]
    assert all("\n" not in text for text in texts)


def test_payload_time_is_utc_whatever_the_zone_given() -> None:
    elsewhere = NOW.astimezone(timezone(timedelta(hours=2)))
    payload = slack_payload(replace(firing(1), at=elsewhere), "h")
    assert payload["alert"]["firedAt"] == "2026-11-24T22:48:59.317099Z"


def test_windows_not_in_whole_minutes_read_in_seconds() -> None:
    bad = replace(QUIET, window_seconds=90, failed_attempts=50)
    assert evaluate(bad, CONFIG)[0].detail.endswith("in the last 90 s")
