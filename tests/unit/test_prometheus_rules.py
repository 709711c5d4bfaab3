"""chatd/ops/prometheus-rules.yml: a well-formed Prometheus rule file whose thresholds are the
guide's (the same as the in-process alerts' defaults), using only the metrics chatd exposes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import chatd
from chatd.settings import AlertSettings

RULES_FILE = Path(chatd.__file__).resolve().parent / "ops" / "prometheus-rules.yml"

# Every chatd series the rules read, spelled as /metrics exposes it (a histogram's _sum and
# _count, a counter's _total). The live /metrics output must contain each of these.
RULE_METRICS = frozenset(
    {
        "chatd_webhook_attempts_total",
        "chatd_queue_oldest_pending_seconds",
        "chatd_response_time_seconds_sum",
        "chatd_response_time_seconds_count",
        "chatd_dead_letters_total",
        "chatd_database_up",
    }
)

GUIDE_ALERTS = ("ChatdHighWebhookFailureRate", "ChatdQueueProcessingDelay", "ChatdHighResponseTime")
_DURATION = re.compile(r"^(0|\d+[smhdwy])+$")
_METRIC = re.compile(r"\bchatd_[a-z0-9_]+")  # label values are never chatd_*
_COMPARISON = re.compile(r"(>=|>)\s*([0-9.]+)")


@pytest.fixture(scope="module")
def rules() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    (group,) = document["groups"]
    assert group["name"] == "chatd"
    by_name = {rule["alert"]: rule for rule in group["rules"]}
    assert len(by_name) == len(group["rules"]), "an alert name is used twice"
    return by_name


def test_the_guides_alerts_and_the_operational_ones_are_there(
    rules: dict[str, dict[str, Any]],
) -> None:
    assert set(GUIDE_ALERTS) <= set(rules)
    assert {"ChatdDown", "ChatdDeadLetters"} <= set(rules)


def test_every_rule_is_complete(rules: dict[str, dict[str, Any]]) -> None:
    for name, rule in rules.items():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, name
        assert name.startswith("Chatd"), name
        assert isinstance(rule["expr"], str), name
        assert rule["expr"].strip(), name
        assert _DURATION.match(str(rule["for"])), f"{name}: bad `for` {rule['for']!r}"
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name


def test_severities_are_the_guides(rules: dict[str, dict[str, Any]]) -> None:
    severities = [rules[name]["labels"]["severity"] for name in GUIDE_ALERTS]
    assert severities == ["critical", "warning", "warning"]
    assert rules["ChatdDown"]["labels"]["severity"] == "critical"


def thresholds(expr: str) -> list[float]:
    return [float(value) for _, value in _COMPARISON.findall(expr)]


def test_thresholds_are_the_guides_and_the_in_process_defaults(
    rules: dict[str, dict[str, Any]],
) -> None:
    defaults = AlertSettings()
    failure = rules["ChatdHighWebhookFailureRate"]["expr"]
    assert (
        thresholds(failure) == [0.05, 20] == [defaults.failure_rate, defaults.failure_min_attempts]
    )
    assert 'outcome=~"retry|dead"' in failure  # failed attempts: retried or dead-lettered
    delay = rules["ChatdQueueProcessingDelay"]["expr"]
    assert thresholds(delay) == [30] == [defaults.queue_delay_seconds]
    response = rules["ChatdHighResponseTime"]["expr"]
    assert thresholds(response) == [5] == [defaults.response_time_seconds]
    assert "chatd_response_time_seconds_sum" in response  # an average, not a quantile
    assert "chatd_response_time_seconds_count" in response
    for name in ("ChatdHighWebhookFailureRate", "ChatdHighResponseTime"):
        windows = re.findall(r"\[(\w+)\]", rules[name]["expr"])
        assert set(windows) == {"5m"}, f"{name}: the window is alerts.window_seconds' 300 s"


def test_rules_use_exactly_the_metrics_listed(rules: dict[str, dict[str, Any]]) -> None:
    used = {name for rule in rules.values() for name in _METRIC.findall(rule["expr"])}
    assert used == RULE_METRICS
    assert 'up{job="chatd"}' in rules["ChatdDown"]["expr"]


def test_promtool_accepts_the_file() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, (
        "promtool is missing: install Debian's `prometheus` package (.ci/run does)"
    )
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
