"""chatd bench's pure parts: percentiles, the report's accounting, phases."""

from __future__ import annotations

import json

import pytest

from chatd.bench.scenarios import Phase, parse_phases
from chatd.bench.stats import Report, Tally, percentile, summary_ms


def test_nearest_rank_percentiles() -> None:
    values = [0.005, 0.001, 0.003, 0.002, 0.004]
    assert percentile(values, 0.5) == 0.003
    assert percentile(values, 0.99) == 0.005
    assert percentile(values, 0.0) == 0.001
    assert percentile([], 0.5) is None
    assert summary_ms(values) == {"p50": 3.0, "p90": 5.0, "p99": 5.0, "max": 5.0}
    assert summary_ms([]) == {"p50": None, "p90": None, "p99": None, "max": None}


def test_every_acknowledged_message_without_a_reply_is_lost() -> None:
    tally = Tally(sessions=2, sent=5, acked=4, replies=3, duplicated=1)
    tally.errors["http_429"] += 1
    tally.reply_latency += [0.01, 0.02, 0.03]
    report = Report.from_tally("throughput", "http://x", 2.0, 0.5, tally, run_id="r1")
    data = report.as_dict()
    assert (data["lost"], data["duplicated"], data["errors"]) == (1, 1, {"http_429": 1})
    assert data["throughput"] == 1.5
    assert (data["cpu_seconds"], data["cpu_share"]) == (0.5, 0.25)
    assert data["reply_ms"]["p50"] == 20.0
    assert data["run_id"] == "r1"
    json.dumps(data)  # one JSON line for machines
    table = report.table()
    for row in ("lost                1", "duplicated          1", "errors              http_429 1"):
        assert row in table
    assert "load generator CPU  0.5 s, 25% of a core\n" in table + "\n"


def test_a_load_generator_near_a_full_core_says_it_may_be_the_bottleneck() -> None:
    report = Report.from_tally("throughput", "http://x", 2.0, 1.9, Tally())
    assert "95% of a core (the load generator may be the bottleneck" in report.table()


def test_progress_line_reports_the_recent_rate() -> None:
    tally = Tally(sessions=1, sent=10, replies=10, reply_latency=[0.05] * 10)
    first = tally.progress_line(2.0)
    assert "10 replies" in first
    assert "5 replies/s" in first
    assert "p50 50 ms" in first
    tally.replies = 13
    assert "3 replies/s" in tally.progress_line(3.0)


def test_phases_parse_and_bad_ones_are_named() -> None:
    assert parse_phases("10:60, 50:30,100:1.5") == [
        Phase(10, 60),
        Phase(50, 30),
        Phase(100, 1.5),
    ]
    for bad in ("10", "a:5", "10:0", "-1:5", "10:5,"):
        with pytest.raises(ValueError, match="RATE:SECONDS"):
            parse_phases(bad)


def test_a_run_without_a_reply_measured_nothing_and_says_why() -> None:
    tally = Tally(sessions=3, sent=3)
    tally.errors["http_429"] += 5
    tally.limited["chat.rate_limit_max"] += 5
    report = Report.from_tally("throughput", "http://x", 1.0, 0.1, tally)
    assert not report.measured
    assert report.as_dict()["limited"] == {"chat.rate_limit_max": 5}
    assert report.warnings() == [
        "the target's rate limits refused requests (HTTP 429): chat.rate_limit_max (5 refused)."
        " For a load test, start the target with higher limits, e.g."
        " CHATD_CHAT__RATE_LIMIT_MAX=1000000 chatd serve",
        "nothing was measured: no bot reply",
    ]
    idle = Report.from_tally("idle", "http://x", 1.0, 0.1, Tally(sessions=4))
    assert idle.measured
    assert idle.warnings() == []
