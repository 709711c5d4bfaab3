"""GET /api/admin/analytics for 30 days over 1,000,000 messages, against the p99 of
GET /api/chat/messages for one session of the same server, same run (issue 21's target: p99 at
most 10 times the baseline's).

The database gets 20,000 conversations spread over the last 30 days, 50 messages each (shopper
questions and bot answers, most answers naming an intent), half of them rated (baseline.py);
then the hours are rolled up as the maintenance leader does (timed: it is a figure too). 4
keep-alive connections ask back to back: the baseline, the analytics, the baseline again.
Run: uv run pytest -m benchmark tests/benchmarks/test_bench_analytics.py -s
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
import pytest
import trio

from chatd.db.analytics import AnalyticsStore
from chatd.db.pool import PoolConfig, open_pool
from tests.benchmarks.baseline import (
    CONNECTIONS,
    MESSAGES,
    SECONDS,
    SESSIONS,
    baseline_session,
    fill,
    measure_against_baseline,
)
from tests.benchmarks.loadgen import request_bytes
from tests.benchmarks.server import chatd_process

TARGET = 10.0
TOKEN = "bench-analytics-token-0123456789abcdef"

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(600)]


async def roll_up(database_url: str) -> tuple[float, int]:
    started = time.perf_counter()
    async with open_pool(PoolConfig(database_url)) as pool:
        rollup = await AnalyticsStore(pool).roll_up()
    return time.perf_counter() - started, rollup.hours


async def test_analytics_for_30_days_against_one_sessions_messages(database_url: str) -> None:
    started = time.perf_counter()
    await trio.to_thread.run_sync(fill, database_url)
    filled = time.perf_counter() - started
    rollup_seconds, hours = await roll_up(database_url)
    async with chatd_process(
        database_url,
        CHATD_QUEUE__DISPATCH="false",
        CHATD_ADMIN__TOKEN=TOKEN,
        CHATD_MAINTENANCE__INTERVAL_SECONDS="0",
    ) as (url, _process):
        async with httpx.AsyncClient(base_url=url) as client:
            session = await baseline_session(client)
            answer = await client.get(
                "/api/admin/analytics",
                params={"range": "30d"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        report = answer.json()
        analytics = request_bytes(
            "GET", "/api/admin/analytics?range=30d&tz=Europe/Berlin", urlsplit(url).netloc, b"",
            {"Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
        measured = await measure_against_baseline(url, session, analytics)

    print(
        f"\n{MESSAGES:,} messages in {SESSIONS:,} conversations over 30 days: filled in"
        f" {filled:.1f} s; {hours} hours rolled up in {rollup_seconds:.1f} s;"
        f" {CONNECTIONS} connections, {SECONDS:g} s each"
    )
    print(measured.rows("GET /api/admin/analytics 30d"))
    print(f"  ratio p99 analytics / p99 messages = {measured.ratio:.2f}  (target <= {TARGET:g})")
    assert answer.status_code == 200, answer.text[:300]
    # The report covers what was inserted (the 30 days start at midnight 29 days ago, so the
    # oldest hours fall outside).
    assert report["totals"]["userMessages"] + report["totals"]["botMessages"] > 0.9 * MESSAGES
    assert report["csat"]["count"] > 0.45 * SESSIONS * 29 / 30
    assert {i["name"] for i in report["topIntents"]} == {"order", "shipping", "return"}
    assert len(report["series"]) == 30
    assert not measured.errors
    assert measured.ratio <= TARGET
