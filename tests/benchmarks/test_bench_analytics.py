"""GET /api/admin/analytics for 30 days over 1,000,000 messages, against the p99 of
GET /api/chat/messages for one session of the same server, same run (issue 21's target: p99 at
most 10 times the baseline's).

The database gets 20,000 conversations spread over the last 30 days, 50 messages each (shopper
questions and bot answers, most answers naming an intent), half of them rated; then the hours
are rolled up as the maintenance leader does (timed: it is a figure too). 4 keep-alive
connections ask back to back: the baseline, the analytics, the baseline again.
Run: uv run pytest -m benchmark tests/benchmarks/test_bench_analytics.py -s
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import trio

from chatd.db.analytics import AnalyticsStore
from chatd.db.pool import PoolConfig, open_pool
from tests.benchmarks.loadgen import LoadResult, request_bytes, run_load
from tests.benchmarks.server import chatd_process

SESSIONS = 20_000
PER_SESSION = 50
MESSAGES = SESSIONS * PER_SESSION
CONNECTIONS = 4
SECONDS = 5.0
TARGET = 10.0
TOKEN = "bench-analytics-token-0123456789abcdef"

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(600)]

# Session g starts (g % 720) hours ago; its message k (1..50) is k * 10 s later: odd k the
# shopper's, even k the bot's answer to k - 1 (three in four naming an intent).
FILL = [
    "ALTER TABLE chat_messages DISABLE TRIGGER chat_messages_events",  # no 1M NOTIFYs
    """
    INSERT INTO chat_sessions (id, token_hash, status, last_seq, expires_at, created_at, updated_at)
    SELECT md5('session' || g)::uuid::text, '\\x00', 'closed', %(per_session)s,
           now() + interval '1 day', t, t
      FROM generate_series(0, %(sessions)s - 1) AS g,
           LATERAL (SELECT now() - (g %% 720) * interval '1 hour' - interval '20 minutes' AS t) AS s
    """,
    """
    INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, status, seq,
                               reply_to, metadata, created_at, updated_at)
    SELECT md5(s.id || k)::uuid::text, s.id,
           CASE WHEN k %% 2 = 1 THEN 'user' ELSE 'bot' END,
           'Where is my order #' || k || '?', 'text', 'delivered', k,
           CASE WHEN k %% 2 = 0 THEN md5(s.id || (k - 1))::uuid::text END,
           CASE WHEN k %% 2 = 0 AND k %% 8 <> 0
                THEN jsonb_build_object('n8n', jsonb_build_object(
                         'intent', (ARRAY['order', 'shipping', 'return'])[k %% 3 + 1])) END,
           s.created_at + k * interval '10 seconds', s.created_at + k * interval '10 seconds'
      FROM chat_sessions s, generate_series(1, %(per_session)s) AS k
    """,
    "ALTER TABLE chat_messages ENABLE TRIGGER chat_messages_events",
    """
    INSERT INTO chat_ratings (session_id, rating, comment, created_at)
    SELECT id, 1 + abs(hashtext(id)) %% 5, NULL, created_at + interval '15 minutes'
      FROM chat_sessions WHERE abs(hashtext(id)) %% 2 = 0
    """,
]


def fill(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for statement in FILL:
            conn.execute(statement, {"sessions": SESSIONS, "per_session": PER_SESSION})
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE chat_sessions, chat_messages, chat_ratings")


async def roll_up(database_url: str) -> tuple[float, int]:
    started = time.perf_counter()
    async with open_pool(PoolConfig(database_url)) as pool:
        rollup = await AnalyticsStore(pool).roll_up()
    return time.perf_counter() - started, rollup.hours


def _row(name: str, result: LoadResult) -> str:
    return (
        f"  {name:<34} {result.rate:>7.0f} req/s   p50 {result.percentile(0.5) * 1000:6.2f} ms"
        f"   p99 {result.percentile(0.99) * 1000:6.2f} ms   errors {result.errors or 0}"
    )


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
        host = urlsplit(url).netloc
        async with httpx.AsyncClient(base_url=url) as client:
            session = (await client.post("/api/chat/session", json={})).json()
            auth = {"Authorization": f"Bearer {session['sessionToken']}"}
            for n in range(20):
                body = {"sessionId": session["sessionId"], "content": f"question {n}"}
                assert (await client.post("/api/chat/send", json=body, headers=auth)).is_success
            answer = await client.get(
                "/api/admin/analytics",
                params={"range": "30d"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        report = answer.json()
        messages = request_bytes(
            "GET", f"/api/chat/messages/{session['sessionId']}?page=1&limit=50", host, b"", auth
        )
        analytics = request_bytes(
            "GET", "/api/admin/analytics?range=30d&tz=Europe/Berlin", host, b"",
            {"Authorization": f"Bearer {TOKEN}"},
        )  # fmt: skip
        await run_load(url, lambda n: messages, connections=CONNECTIONS, duration=1.0)  # warm-up
        before = await run_load(url, lambda n: messages, connections=CONNECTIONS, duration=SECONDS)
        insights = await run_load(
            url, lambda n: analytics, connections=CONNECTIONS, duration=SECONDS
        )
        after = await run_load(url, lambda n: messages, connections=CONNECTIONS, duration=SECONDS)

    baseline = max(before.percentile(0.99), after.percentile(0.99))
    ratio = insights.percentile(0.99) / baseline
    print(
        f"\n{MESSAGES:,} messages in {SESSIONS:,} conversations over 30 days: filled in"
        f" {filled:.1f} s; {hours} hours rolled up in {rollup_seconds:.1f} s;"
        f" {CONNECTIONS} connections, {SECONDS:g} s each"
    )
    print(_row("GET /api/chat/messages (1 session)", before))
    print(_row("GET /api/admin/analytics 30d", insights))
    print(_row("GET /api/chat/messages (again)", after))
    print(f"  ratio p99 analytics / p99 messages = {ratio:.2f}  (target <= {TARGET:g})")
    assert answer.status_code == 200, answer.text[:300]
    # The report covers what was inserted (the 30 days start at midnight 29 days ago, so the
    # oldest hours fall outside).
    assert report["totals"]["userMessages"] + report["totals"]["botMessages"] > 0.9 * MESSAGES
    assert report["csat"]["count"] > 0.45 * SESSIONS * 29 / 30
    assert {i["name"] for i in report["topIntents"]} == {"order", "shipping", "return"}
    assert len(report["series"]) == 30
    assert not before.errors
    assert not insights.errors
    assert not after.errors
    assert ratio <= TARGET
