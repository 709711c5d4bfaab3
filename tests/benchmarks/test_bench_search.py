"""GET /api/admin/search over 1,000,000 messages, a word found in at most 1 % of them, first
page, against the p99 of GET /api/chat/messages for one session of the same server, same run
(issue 21's target: p99 at most 3 times the baseline's).

The database is the analytics benchmark's (baseline.py: 20,000 conversations over the last 30
days, 50 messages each), then one message in 125 (0.8 %, chosen by a hash of its id,
so spread over all the days) is rewritten to ask about an umbrella. 4 keep-alive connections ask
back to back: the baseline, the search (newest first, 20 a page), the baseline again.
Run: uv run pytest -m benchmark tests/benchmarks/test_bench_search.py -s
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import trio

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

TARGET = 3.0
WORD = "umbrella"
EVERY = 125  # one message in EVERY holds WORD
TOKEN = "bench-search-token-0123456789abcdef"

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(900)]

MARK = [
    "ALTER TABLE chat_messages DISABLE TRIGGER chat_messages_events",
    """
    UPDATE chat_messages SET content = 'Is the ' || %(word)s || ' in stock, order #' || seq || '?'
     WHERE abs(hashtext(id)) %% %(every)s = 0
    """,
    "ALTER TABLE chat_messages ENABLE TRIGGER chat_messages_events",
]


def mark(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        for statement in MARK:
            conn.execute(statement, {"word": WORD, "every": EVERY})
        row = conn.execute(
            "SELECT count(*) FROM chat_messages WHERE content LIKE %s", (f"%{WORD}%",)
        ).fetchone()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE chat_messages")
    assert row is not None
    return int(row[0])


async def test_search_for_a_rare_word_against_one_sessions_messages(database_url: str) -> None:
    started = time.perf_counter()
    await trio.to_thread.run_sync(fill, database_url)
    matching = await trio.to_thread.run_sync(mark, database_url)
    filled = time.perf_counter() - started
    admin = {"Authorization": f"Bearer {TOKEN}"}
    async with chatd_process(
        database_url,
        CHATD_QUEUE__DISPATCH="false",
        CHATD_ADMIN__TOKEN=TOKEN,
        CHATD_MAINTENANCE__INTERVAL_SECONDS="0",
    ) as (url, _process):
        async with httpx.AsyncClient(base_url=url) as client:
            session = await baseline_session(client)
            answer = await client.get("/api/admin/search", params={"q": WORD}, headers=admin)
        search = request_bytes(
            "GET", f"/api/admin/search?q={WORD}", urlsplit(url).netloc, b"", admin
        )
        measured = await measure_against_baseline(url, session, search)

    print(
        f"\n{MESSAGES:,} messages in {SESSIONS:,} conversations, {matching:,} holding"
        f" {WORD!r} ({matching / MESSAGES:.2%}): filled in {filled:.1f} s;"
        f" {CONNECTIONS} connections, {SECONDS:g} s each"
    )
    print(measured.rows(f"GET /api/admin/search?q={WORD}"))
    print(f"  ratio p99 search / p99 messages = {measured.ratio:.2f}  (target <= {TARGET:g})")
    assert 0 < matching <= MESSAGES // 100
    assert answer.status_code == 200, answer.text[:300]
    results = answer.json()["results"]
    assert len(results) == 20
    assert answer.json()["hasMore"]
    assert all(WORD in "".join(s["text"] for s in hit["snippet"]) for hit in results)
    stamps = [hit["createdAt"] for hit in results]
    assert stamps == sorted(stamps, reverse=True)
    assert not measured.errors
    # The target, not a tighter regression ceiling: the runs measured 1.26-1.33 (docs/performance.md), and
    # this ratio moved twofold with the machine's load in the analytics benchmark.
    assert measured.ratio <= TARGET
