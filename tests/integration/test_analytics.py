"""GET /api/admin/analytics on a real database: the numbers equal counts this test makes itself
from the rows it inserted (spread over days, at explicit times), the same before and after the
maintenance leader rolls the hours up (and after cleanup deleted the conversations), CSV per
chart, and bad input refused with nothing changed."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import trio
import trio.lowlevel

from chatd.core.insights import ANSWER_BOUNDS, bucket_index
from chatd.db.pool import Pool
from chatd.ops.maintenance import maintenance_round
from chatd.settings import MaintenanceSettings, Settings
from tests.chat import table_counts
from tests.conftest import RunningChatd, make_settings

TOKEN = "analytics-token-0123456789abcdefghij"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
INTENTS = ("order", "return", "shipping", "=HYPERLINK(1)")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, admin={"token": TOKEN})


@pytest.fixture
async def client(chatd: RunningChatd) -> AsyncIterator[httpx.AsyncClient]:
    async with chatd.client(headers=ADMIN) as client:
        yield client


@dataclass
class Seeded:
    """What the test inserted, counted by the test, per UTC day."""

    conversations: Counter[str] = field(default_factory=Counter)
    messages: Counter[tuple[str, str]] = field(default_factory=Counter)  # (day, sender)
    answers: dict[str, list[float]] = field(default_factory=dict)
    dead: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    ratings: Counter[tuple[str, int]] = field(default_factory=Counter)
    intents: Counter[str] = field(default_factory=Counter)


async def seed(pool: Pool, now: datetime, days: int, rng: random.Random) -> Seeded:
    """Conversations over the last `days` days (and a few older ones, outside the window), each
    with shopper messages, bot answers (some retried), a fallback, a rating, at known times."""
    seeded = Seeded()
    first = window_start(now, days)

    def counted(at: datetime) -> str | None:
        """The day `at` is counted in, or None outside the window."""
        return at.date().isoformat() if at >= first else None

    async with pool.connection() as conn, conn.transaction():
        for n in range(days * 6 + 4):
            started = now - timedelta(days=rng.uniform(0, days + 3), minutes=30)
            sid = f"00000000-0000-4000-8000-{n:012d}"
            seq = 0
            rows: list[tuple[Any, ...]] = []
            for turn in range(rng.randint(1, 4)):
                asked = started + timedelta(minutes=turn * 3)
                seq += 1
                attempts = rng.choice((1, 1, 2, 3))
                user_id = f"{sid}-u{seq}"
                rows.append((user_id, "user", "hi", None, None, asked, seq, attempts))
                seq += 1
                fallback = rng.random() < 0.15
                seconds = round(rng.uniform(0.2, 40), 3)
                answered = asked + timedelta(seconds=seconds)
                meta = '{"fallback": true}' if fallback else None
                intent = rng.choice(INTENTS)
                if not fallback and rng.random() < 0.7:
                    meta = f'{{"n8n": {{"intent": "{intent}"}}}}'
                    if counted(answered):
                        seeded.intents[intent] += 1
                rows.append((f"{sid}-b{seq}", "bot", "ok", meta, user_id, answered, seq, 0))
                if d := counted(asked):
                    seeded.messages[(d, "user")] += 1
                if d := counted(answered):
                    seeded.messages[(d, "bot")] += 1
                    if fallback:
                        seeded.dead[d] += 1
                    else:
                        seeded.answers.setdefault(d, []).append(seconds)
                    seeded.retries[d] += attempts - 1
            rating = rng.choice((None, 1, 3, 4, 5, 5))
            rated = started + timedelta(minutes=20)
            await conn.execute(
                "INSERT INTO chat_sessions (id, token_hash, status, created_at, updated_at,"
                " expires_at, last_seq) VALUES (%s, '\\x00', 'closed', %s, %s, %s, %s)",
                (sid, started, rated, rated, seq + (rating is not None)),
            )
            for mid, sender, content, meta, reply_to, at, s, attempts in rows:
                await conn.execute(
                    "INSERT INTO chat_messages (id, session_id, sender_type, content, metadata,"
                    " reply_to, created_at, seq, webhook_attempts)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (mid, sid, sender, content, meta, reply_to, at, s, attempts),
                )
            if rating is not None:
                await conn.execute(
                    "INSERT INTO chat_messages (id, session_id, sender_type, content, created_at,"
                    " seq) VALUES (%s, %s, 'system', 'Rated', %s, %s)",
                    (f"{sid}-r", sid, rated, seq + 1),
                )
                await conn.execute(
                    "INSERT INTO chat_ratings (session_id, rating, created_at) VALUES (%s, %s, %s)",
                    (sid, rating, rated),
                )
                if d := counted(rated):
                    seeded.ratings[(d, rating)] += 1
                    seeded.messages[(d, "system")] += 1
            if d := counted(started):
                seeded.conversations[d] += 1
    return seeded


def window_start(now: datetime, days: int) -> datetime:
    return datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=days - 1)


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]


def check_quantile(answer: float | None, values: list[float], q: float) -> None:
    """Within the bucket of the exact quantile (or the next one, at a bucket's edge)."""
    if not values:
        assert answer is None
        return
    assert answer is not None
    i = bucket_index(exact_quantile(values, q))
    low = ANSWER_BOUNDS[i - 2] if i >= 2 else 0.0
    high = ANSWER_BOUNDS[min(i + 1, len(ANSWER_BOUNDS) - 1)]
    assert low <= answer <= high, (answer, exact_quantile(values, q))


def check(body: dict[str, Any], seeded: Seeded) -> None:
    """Every bucket's numbers against the test's own counts."""
    assert body["bucket"] == "day"
    for point in body["series"]:
        d = point["start"][:10]
        assert point["conversations"] == seeded.conversations[d], d
        assert point["userMessages"] == seeded.messages[(d, "user")], d
        assert point["botMessages"] == seeded.messages[(d, "bot")], d
        assert point["systemMessages"] == seeded.messages[(d, "system")], d
        assert point["answers"] == len(seeded.answers.get(d, [])), d
        assert point["deadLetters"] == seeded.dead[d], d
        assert point["retries"] == seeded.retries[d], d
        ratings = [seeded.ratings[(d, r)] for r in range(1, 6)]
        assert point["ratings"] == sum(ratings)
        if sum(ratings):
            average = sum((r + 1) * n for r, n in enumerate(ratings)) / sum(ratings)
            assert point["ratingAverage"] == round(average, 2)
        check_quantile(point["answerP50Seconds"], seeded.answers.get(d, []), 0.5)
        check_quantile(point["answerP95Seconds"], seeded.answers.get(d, []), 0.95)
    totals = body["totals"]
    assert totals["conversations"] == sum(seeded.conversations.values())
    assert totals["userMessages"] == sum(n for (_, s), n in seeded.messages.items() if s == "user")
    all_answers = [v for values in seeded.answers.values() for v in values]
    check_quantile(totals["answerP95Seconds"], all_answers, 0.95)
    distribution = {
        str(r): sum(n for (_, v), n in seeded.ratings.items() if v == r) for r in range(1, 6)
    }
    assert body["csat"]["distribution"] == distribution
    expected_intents = sorted(seeded.intents.items(), key=lambda item: (-item[1], item[0]))
    assert [(i["name"], i["count"]) for i in body["topIntents"]] == expected_intents


async def test_numbers_equal_the_rows_before_and_after_the_rollup_and_cleanup(
    chatd: RunningChatd, client: httpx.AsyncClient, pool: Pool
) -> None:
    now = datetime.now(UTC)
    seeded = await seed(pool, now, 7, random.Random(7))
    live = (await client.get("/api/admin/analytics", params={"range": "7d"})).json()
    assert live["rolledUntil"] is None  # nothing rolled up yet: all of it counted live
    assert len(live["series"]) == 7
    check(live, seeded)

    # The maintenance leader rolls every hour that is over up, then cleanup deletes the closed,
    # expired conversations: the numbers stay.
    summary = await maintenance_round(pool, MaintenanceSettings())
    assert summary is not None
    assert summary.categories()["expired_sessions"].sessions > 0
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT count(*) AS n FROM chat_sessions")).fetchone()
        # Gone, but those active within the hours not rolled up yet (counted live).
        assert rows is not None
        assert rows["n"] < 7 * 6 + 4 - summary.categories()["expired_sessions"].sessions + 1
    rolled = (await client.get("/api/admin/analytics", params={"range": "7d"})).json()
    assert rolled["rolledUntil"] is not None
    check(rolled, seeded)
    assert {**rolled, "rolledUntil": None} == live


async def test_a_conversation_of_this_hour_is_counted_live(
    chatd: RunningChatd, client: httpx.AsyncClient, pool: Pool
) -> None:
    await maintenance_round(pool, MaintenanceSettings())
    async with chatd.client() as shopper:
        created = await shopper.post("/api/chat/session", json={})
        token = created.json()["sessionToken"]
        await shopper.post(
            "/api/chat/send",
            headers={"Authorization": f"Bearer {token}"},
            json={"sessionId": created.json()["sessionId"], "content": "hello"},
        )
    body = (await client.get("/api/admin/analytics", params={"range": "1d"})).json()
    assert body["bucket"] == "hour"
    assert len(body["series"]) == 24
    assert body["series"][-1]["conversations"] == 1
    assert body["series"][-1]["userMessages"] == 1
    assert body["totals"]["conversations"] == 1


async def test_days_follow_the_time_zone_asked_for(
    chatd: RunningChatd, client: httpx.AsyncClient, pool: Pool
) -> None:
    async with pool.connection() as conn:
        # 23:30 UTC on 2026-03-01 is 00:30 on 2026-03-02 in Berlin (UTC+1 in March).
        await conn.execute(
            "INSERT INTO chat_sessions (id, token_hash, created_at, expires_at)"
            " VALUES ('late', '\\x00', '2026-03-01T23:30:00Z', now())"
        )
    params = {"start": "2026-03-01", "end": "2026-03-02"}
    utc = (await client.get("/api/admin/analytics", params={**params, "bucket": "day"})).json()
    berlin = (
        await client.get(
            "/api/admin/analytics", params={**params, "bucket": "day", "tz": "Europe/Berlin"}
        )
    ).json()
    assert [p["conversations"] for p in utc["series"]] == [1, 0]
    assert [p["conversations"] for p in berlin["series"]] == [0, 1]
    assert berlin["series"][1]["start"] == "2026-03-02T00:00:00+01:00"


async def test_each_chart_exports_its_numbers_as_csv(
    chatd: RunningChatd, client: httpx.AsyncClient, pool: Pool
) -> None:
    seeded = await seed(pool, datetime.now(UTC), 30, random.Random(30))
    body = (await client.get("/api/admin/analytics", params={"range": "30d"})).json()
    charts = {
        "activity": ["start", "conversations", "user_messages", "bot_messages", "system_messages"],
        "answer_time": ["start", "answers", "p50_seconds", "p95_seconds"],
        "delivery": ["start", "dead_letters", "retries"],
        "csat": ["start", "ratings", "average"],
        "ratings": ["rating", "count"],
        "intents": ["intent", "count"],
    }
    for chart, header in charts.items():
        response = await client.get(
            "/api/admin/analytics", params={"range": "30d", "format": "csv", "chart": chart}
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"].startswith('attachment; filename="chatd-')
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0] == header
        if chart == "activity":
            assert [int(r[1]) for r in rows[1:]] == [p["conversations"] for p in body["series"]]
            assert sum(int(r[2]) for r in rows[1:]) == body["totals"]["userMessages"]
        if chart == "ratings":
            assert {r[0]: int(r[1]) for r in rows[1:]} == body["csat"]["distribution"]
        if chart == "intents":
            named = {r[0]: int(r[1]) for r in rows[1:]}
            assert named["'=HYPERLINK(1)"] == seeded.intents["=HYPERLINK(1)"]  # defused


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"range": "2d"}, "range"),
        ({"range": "7d", "start": "2026-01-01", "end": "2026-01-02"}, "range"),
        ({"start": "2026-01-01"}, "end"),
        ({"start": "2026-02-30", "end": "2026-03-01"}, "start"),
        ({"start": "2026-03-02", "end": "2026-03-01"}, "end"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, "end"),
        ({"start": "01/02/2026", "end": "2026-03-01"}, "start"),
        ({"start": "2026-01-01", "end": "2026-03-01", "bucket": "hour"}, "bucket"),
        ({"bucket": "minute"}, "bucket"),
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"format": "csv"}, "chart"),
        ({"chart": "activity"}, "chart"),
        ({"format": "csv", "chart": "pie"}, "chart"),
        ({"format": "xml"}, "format"),
        ({"days": "7"}, "days"),
    ],
)
async def test_bad_queries_are_refused_and_change_nothing(
    chatd: RunningChatd, client: httpx.AsyncClient, pool: Pool, params: dict[str, str], field: str
) -> None:
    before = await table_counts(pool)
    response = await client.get("/api/admin/analytics", params=params)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"]["field"] == field
    assert await table_counts(pool) == before


async def test_only_admins_see_analytics(chatd: RunningChatd) -> None:
    async with chatd.client() as anyone:
        response = await anyone.get("/api/admin/analytics")
        assert response.status_code == 401
        assert response.headers["cache-control"] == "no-store"
        wrong = await anyone.get("/api/admin/analytics", headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 401
    await trio.lowlevel.checkpoint()
