"""`chatd bench` on tiny runs against a served chatd and its built-in sink: every count in the
report matches what the server stored."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
import trio

from tests.benchmarks.server import bench_sink, chatd_process, run_bench

ADMIN = "bench-admin-token"


@pytest.fixture
async def sink() -> AsyncIterator[str]:
    async with bench_sink() as (url, _process):
        yield url


@pytest.fixture
async def served(database_url: str, sink: str) -> AsyncIterator[str]:
    async with chatd_process(
        database_url, CHATD_N8N__WEBHOOK_URL=f"{sink}/webhook", CHATD_ADMIN__TOKEN=ADMIN
    ) as (url, _process):
        yield url


async def bench(*args: str) -> dict[str, Any]:
    report, stderr = await run_bench(*args)
    assert "bot replies" in stderr  # the table, on stderr with --json
    return report


def stored(database_url: str, run_id: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT s.id),"
            " count(m.id) FILTER (WHERE m.sender_type = 'user'),"
            " count(m.id) FILTER (WHERE m.sender_type = 'bot'),"
            " count(m.id) FILTER (WHERE m.sender_type = 'system')"
            " FROM chat_sessions s LEFT JOIN chat_messages m ON m.session_id = s.id"
            " WHERE s.metadata->>'bench' = %s",
            [run_id],
        ).fetchone()
    assert row is not None
    return dict(zip(("sessions", "user", "bot", "system"), row, strict=True))


async def test_conversation_counts_match_the_database(served: str, database_url: str) -> None:
    report = await bench(
        "conversation", "--url", served, "--duration", "1.5", "--rate", "4",
        "--messages", "3", "--think", "0.1",
    )  # fmt: skip
    assert report["sessions"] >= 5
    assert report["sent"] == report["acked"] == report["replies"] == 3 * report["sessions"]
    assert (report["lost"], report["duplicated"], report["errors"]) == (0, 0, {})
    assert 0 < report["reply_ms"]["p50"] <= report["reply_ms"]["p99"] <= report["reply_ms"]["max"]
    assert stored(database_url, report["run_id"]) == {
        "sessions": report["sessions"],
        "user": report["sent"],
        "bot": report["replies"],
        "system": 0,
    }


async def test_throughput_counts_match_the_database(served: str, database_url: str) -> None:
    report = await bench(
        "throughput", "--url", served, "--duration", "2", "--concurrency", "3", "--messages", "4"
    )
    assert report["replies"] == report["sent"] > 10
    assert report["throughput"] > 0
    assert report["cpu_seconds"] > 0  # the load generator's own CPU, measured
    assert 0 < report["cpu_share"] < 2
    assert (report["lost"], report["duplicated"]) == (0, 0)
    counts = stored(database_url, report["run_id"])
    assert (counts["user"], counts["bot"]) == (report["sent"], report["replies"])
    assert counts["sessions"] == report["sessions"]


async def test_idle_holds_sessions_and_times_a_broadcast(served: str, database_url: str) -> None:
    report = await bench(
        "idle", "--url", served, "--duration", "0.5", "--sessions", "12", "--admin-token", ADMIN
    )
    assert report["connected"] == 12
    assert report["broadcast_to"] == report["broadcast_received"] == 12
    assert report["broadcast_ms"]["max"] < 5000
    assert stored(database_url, report["run_id"]) == {
        "sessions": 12,
        "user": 0,
        "bot": 0,
        "system": 12,
    }


async def test_bad_arguments_exit_2_with_a_message() -> None:
    for args, message in (
        ([], b"give a scenario and --url"),
        (["throughput", "--url", "ftp://x"], b"--url must be http(s)"),
        (["conversation", "--url", "http://127.0.0.1:1", "--phases", "10"], b"RATE:SECONDS"),
        (["throughput", "--url", "http://x", "--duration", "-1"], b"must be > 0"),
    ):
        result = await trio.run_process(
            [sys.executable, "-m", "chatd", "bench", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert result.returncode == 2, args
        assert message in result.stderr, (args, result.stderr)


async def test_a_rate_limited_run_says_which_limit_and_how_to_raise_it(
    database_url: str, sink: str
) -> None:
    limits = {"CHATD_CHAT__RATE_LIMIT_MAX": "1", "CHATD_CHAT__SESSION_CREATE_PER_IP_MAX": "2"}
    async with chatd_process(database_url, CHATD_N8N__WEBHOOK_URL=f"{sink}/webhook", **limits) as (
        url,
        _process,
    ):
        result = await trio.run_process(
            [sys.executable, "-m", "chatd", "bench", "throughput", "--url", url,
             "--duration", "1", "--concurrency", "3", "--messages", "3", "--json"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )  # fmt: skip
    report = json.loads(result.stdout.decode().splitlines()[-1])
    assert report["limited"]["chat.session_create_per_ip_max"] > 0
    assert report["limited"]["chat.rate_limit_max"] > 0
    warning = next(line for line in result.stderr.decode().splitlines() if "rate limits" in line)
    assert warning.startswith(
        "chatd bench: the target's rate limits refused requests (HTTP 429): chat.rate_limit_max ("
    )
    assert warning.endswith(
        "e.g. CHATD_CHAT__SESSION_CREATE_PER_IP_MAX=1000000 CHATD_CHAT__RATE_LIMIT_MAX=1000000"
        " chatd serve"
    )
    assert "limits hit" in result.stderr.decode()  # in the table too
