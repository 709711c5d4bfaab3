"""The guide's alert rules, pure: which fire for a set of figures, whether a rule's cooldown has
passed, and the Slack-compatible message that says so. Figures and clocks come in as arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from chatd.settings import AlertSettings


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Figures:
    """The cluster's figures over the last `window_seconds`, read at `measured_at` (the
    database's clock). Exact definitions: `alert_figures` in sql/queries/alerts.sql."""

    measured_at: datetime
    window_seconds: float
    attempts: int  # calls to n8n whose outcome is known, counted per job touched in the window
    failed_attempts: int
    queue_delay_seconds: float  # the longest wait of a due pending job; 0 when none
    replies: int  # bot replies stored in the window
    response_time_seconds: float | None  # their average wait; None when there was none

    @property
    def failure_rate(self) -> float | None:
        return self.failed_attempts / self.attempts if self.attempts else None


@dataclass(frozen=True)
class Rule:
    id: str  # stable: the key in chat_alerts and in the payload
    name: str
    severity: Severity
    threshold: float  # fires when the value is strictly above it, as the guide says ("> 5 %")
    cooldown_seconds: float
    unit: Literal["ratio", "seconds"]


FAILURE_RATE = "high_webhook_failure_rate"
QUEUE_DELAY = "queue_processing_delay"
RESPONSE_TIME = "high_response_time"


def rules(config: AlertSettings) -> tuple[Rule, Rule, Rule]:
    """The guide's three rules with thresholds and cooldowns from `config`."""
    return (
        Rule(
            FAILURE_RATE,
            "High webhook failure rate",
            Severity.CRITICAL,
            config.failure_rate,
            config.failure_rate_cooldown_seconds,
            "ratio",
        ),
        Rule(
            QUEUE_DELAY,
            "Queue processing delay",
            Severity.WARNING,
            config.queue_delay_seconds,
            config.queue_delay_cooldown_seconds,
            "seconds",
        ),
        Rule(
            RESPONSE_TIME,
            "High response time",
            Severity.WARNING,
            config.response_time_seconds,
            config.response_time_cooldown_seconds,
            "seconds",
        ),
    )


RULES = rules(AlertSettings())  # as the guide has them: 5 % / 15 min, 30 s / 10 min, 5 s / 5 min


@dataclass(frozen=True)
class Firing:
    rule: Rule
    value: float
    at: datetime  # when it was measured; the record in chat_alerts replaces it once claimed
    window_seconds: float
    detail: str  # what the value is made of, for people: "7 of 40 attempts failed"


def evaluate(figures: Figures, config: AlertSettings) -> list[Firing]:
    """The rules whose value is above their threshold, in RULES order."""
    failure, delay, response = rules(config)
    window = _duration(figures.window_seconds)
    firings = []

    def fire(rule: Rule, value: float, detail: str) -> None:
        firings.append(Firing(rule, value, figures.measured_at, figures.window_seconds, detail))

    rate = figures.failure_rate
    # Below the minimum, one or two failures of a quiet shop would read as a high rate.
    if (
        rate is not None
        and figures.attempts >= config.failure_min_attempts
        and rate > failure.threshold
    ):
        fire(
            failure,
            rate,
            f"{figures.failed_attempts} of {figures.attempts} attempts failed in the last {window}",
        )
    if figures.queue_delay_seconds > delay.threshold:
        fire(delay, figures.queue_delay_seconds, "the longest-waiting due job")
    average = figures.response_time_seconds
    if average is not None and average > response.threshold:
        replies = "reply" if figures.replies == 1 else "replies"
        fire(
            response,
            average,
            f"average of {figures.replies} {replies} in the last {window}",
        )
    return firings


def due(firing: Firing, last_fired_at: datetime | None, now: datetime) -> bool:
    """Whether `firing` may be sent: its rule never fired, or its cooldown has passed.

    The same test as `claim_alert` in sql/queries/alerts.sql, which is what decides; this one
    spares that write while a rule is plainly still cooling down."""
    if last_fired_at is None:
        return True
    return now - last_fired_at >= timedelta(seconds=firing.rule.cooldown_seconds)


def slack_payload(firing: Firing, instance: str) -> dict[str, Any]:
    """{"text": one line} for Slack, Mattermost and Rocket.Chat incoming webhooks, plus the
    same facts as data under "alert" (unknown fields are ignored by all three)."""
    rule = firing.rule
    text = (
        f"[{rule.severity.upper()}] {rule.name} on chatd {instance}: "
        f"{_show(rule, firing.value)} > {_show(rule, rule.threshold)} ({firing.detail})"
    )
    return {
        "text": text,
        "alert": {
            "id": rule.id,
            "name": rule.name,
            "severity": str(rule.severity),
            "value": firing.value,
            "threshold": rule.threshold,
            "windowSeconds": firing.window_seconds,
            "firedAt": firing.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "instance": instance,
        },
    }


def _show(rule: Rule, value: float) -> str:
    if rule.unit == "ratio":
        return f"{round(value * 100, 1):g} %"
    return f"{round(value, 1):g} s"


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
