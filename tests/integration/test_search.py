"""Full-text search on a real chatd and PostgreSQL: stemmed words of several languages (the
language set), ranking, pages, filters, the matches marked, reindexing into another language,
and bad input (a 4xx that changes nothing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import trio

from chatd.db.pool import Pool, PoolConfig, open_pool
from chatd.db.search import apply_search_language, reindex, reindex_todo
from chatd.errors import ConfigError
from tests.chat import new_session, send, table_counts
from tests.conftest import RunningChatd, make_settings, start_chatd

TOKEN = "admin-token-for-the-search-tests-012345"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


async def start(nursery: trio.Nursery, database_url: str, language: str) -> RunningChatd:
    settings = make_settings(database_url, admin={"token": TOKEN}, search={"language": language})
    pool = await nursery.start(_pool, database_url)
    return await start_chatd(nursery, settings, pool)


async def _pool(url: str, *, task_status: trio.TaskStatus[Pool]) -> None:
    async with open_pool(PoolConfig(url)) as pool:
        task_status.started(pool)
        await trio.sleep_forever()


@pytest.fixture
async def searching(nursery: trio.Nursery, database_url: str) -> AsyncIterator[RunningChatd]:
    chatd = await start(nursery, database_url, "english")
    yield chatd
    chatd.stop.set()


async def search(chatd: RunningChatd, **params: Any) -> dict[str, Any]:
    async with chatd.client(headers=AUTH) as c:
        response = await c.get("/api/admin/search", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def marked(hit: dict[str, Any]) -> list[str]:
    return [s["text"] for s in hit["snippet"] if s["match"]]


class Seeder:
    """Sessions and messages straight into the database (the search column is the database's)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.count = 0

    async def session(
        self,
        sid: str,
        *,
        user_id: str | None = None,
        email: str | None = None,
        tags: tuple[str, ...] = (),
    ) -> str:
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO chat_sessions (id, token_hash, user_id, guest_email, expires_at)"
                " VALUES (%s, '\\x00', %s, %s, now() + interval '1 day')",
                (sid, user_id, email),
            )
            for tag in tags:
                await conn.execute(
                    "INSERT INTO chat_tags (session_id, tag, source) VALUES (%s, %s, 'staff')",
                    (sid, tag),
                )
        return sid

    async def say(
        self,
        sid: str,
        content: str,
        *,
        at: datetime | None = None,
        sender: str = "user",
        status: str = "delivered",
    ) -> str:
        self.count += 1
        mid = f"{sid}-{self.count:05d}"
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO chat_messages (id, session_id, sender_type, content, seq, status,"
                " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    mid,
                    sid,
                    sender,
                    content,
                    self.count,
                    status,
                    at or T0 + timedelta(seconds=self.count),
                ),
            )
        return mid


# --- languages ----------------------------------------------------------------------------------

LANGUAGES = [
    # (language, what the shopper wrote, a query in other forms of its words, the marked words)
    ("english", "Are these running shoes waterproof?", "run shoe", ["running", "shoes"]),
    (
        "german",
        "Haben Sie die Wanderschuhe in Größe 40? Die Schuhe gefallen mir.",
        "Schuh",
        ["Schuhe"],
    ),
    (
        "french",
        "Les chaussures livrées étaient trop petites",
        "chaussure livrer",
        ["chaussures", "livrées"],
    ),
    (
        "spanish",
        "Quiero devolver los zapatos comprados",
        "zapato comprar",
        ["zapatos", "comprados"],
    ),
]


@pytest.mark.parametrize(
    ("language", "text", "q", "words"), LANGUAGES, ids=[x[0] for x in LANGUAGES]
)
async def test_stemmed_forms_are_found_in_the_configured_language(
    nursery: trio.Nursery, database_url: str, language: str, text: str, q: str, words: list[str]
) -> None:
    chatd = await start(nursery, database_url, language)
    async with chatd.client() as c:
        session = await new_session(c)
        assert (await send(c, session, text)).status_code == 200
        other = await new_session(c)
        assert (await send(c, other, "Hello, where is my parcel?")).status_code == 200
    found = await search(chatd, q=q)
    assert found["language"] == language
    assert [(h["sessionId"], h["seq"]) for h in found["results"]] == [(session.id, 1)]
    hit = found["results"][0]
    assert hit["terms"] == words
    assert "".join(s["text"] for s in hit["snippet"]) == text
    assert marked(hit) == words
    chatd.stop.set()


async def test_simple_matches_whole_words_only(nursery: trio.Nursery, database_url: str) -> None:
    chatd = await start(nursery, database_url, "simple")
    async with chatd.client() as c:
        session = await new_session(c)
        assert (await send(c, session, "Die Schuhe passen nicht")).status_code == 200
    assert (await search(chatd, q="Schuh"))["results"] == []
    assert len((await search(chatd, q="schuhe"))["results"]) == 1
    chatd.stop.set()


# --- ranking, pages, filters ------------------------------------------------------------------


async def test_relevance_ranks_and_newest_sorts_by_time(searching: RunningChatd) -> None:
    seed = Seeder(searching.services.pool)
    sid = await seed.session("0b6e2c1f-9a3d-4e5b-8c7f-000000000001")
    far = await seed.say(sid, "trail " + "very " * 30 + "shoes")
    near = await seed.say(sid, "the trail shoes I ordered")
    twice = await seed.say(sid, "trail shoes, trail shoes: both pairs of trail shoes")
    await seed.say(sid, "road shoes only")
    ranked = await search(searching, q="trail shoes", sort="relevance")
    assert [h["messageId"] for h in ranked["results"]] == [twice, near, far]
    ranks = [h["rank"] for h in ranked["results"]]
    assert ranks == sorted(ranks, reverse=True)
    assert ranks[0] > ranks[1] > ranks[2] > 0
    newest = await search(searching, q="trail shoes")
    assert [h["messageId"] for h in newest["results"]] == [twice, near, far]  # by time here too
    assert newest["parsed"] == "'trail' & 'shoe'"
    phrase = await search(searching, q='"trail shoes" -pairs')
    assert [h["messageId"] for h in phrase["results"]] == [near]


async def test_pages_cover_every_match_once(searching: RunningChatd) -> None:
    seed = Seeder(searching.services.pool)
    sid = await seed.session("0b6e2c1f-9a3d-4e5b-8c7f-000000000002")
    ids = [await seed.say(sid, f"parcel number {n} is late") for n in range(45)]
    for n in range(10):
        await seed.say(sid, f"unrelated {n}")
    for sort in ("newest", "relevance"):
        pages = [
            await search(searching, q="parcel", page=p, limit=20, sort=sort) for p in (1, 2, 3)
        ]
        assert [len(p["results"]) for p in pages] == [20, 20, 5]
        assert [p["hasMore"] for p in pages] == [True, True, False]
        seen = [h["messageId"] for p in pages for h in p["results"]]
        assert sorted(seen) == sorted(ids)
        if sort == "newest":
            assert seen == ids[::-1]
    beyond = await search(searching, q="parcel", page=4, limit=20)
    assert beyond == {**beyond, "results": [], "hasMore": False}


async def test_filters_narrow_the_matches(searching: RunningChatd) -> None:
    seed = Seeder(searching.services.pool)
    ann = await seed.session(
        "0b6e2c1f-9a3d-4e5b-8c7f-00000000000a", email="Ann@Shop.example", tags=("refund",)
    )
    bob = await seed.session("0b6e2c1f-9a3d-4e5b-8c7f-00000000000b", user_id="u-bob")
    early = await seed.say(ann, "my refund please", at=T0)
    late = await seed.say(ann, "still no refund", at=T0 + timedelta(days=3))
    bot = await seed.say(
        ann, "Your refund is on its way", at=T0 + timedelta(days=3, seconds=1), sender="bot"
    )
    failed = await seed.say(
        bob, "refund? nobody answers", at=T0 + timedelta(days=1), status="failed"
    )

    async def ids(**params: Any) -> list[str]:
        return [h["messageId"] for h in (await search(searching, q="refund", **params))["results"]]

    assert await ids() == [bot, late, failed, early]
    assert await ids(since="2026-11-02") == [bot, late, failed]
    assert await ids(until="2026-11-02T00:00:00Z") == [early]
    assert await ids(since="2026-11-01T11:00:00+00:30", until="2026-11-03") == [failed]
    assert await ids(tag="Refund") == [bot, late, early]
    assert await ids(status="failed") == [failed]
    assert await ids(status="bot_only") == [bot, late, failed, early]  # nobody asked for a person
    assert await ids(sender="user") == [late, failed, early]
    assert await ids(sender="bot") == [bot]
    assert await ids(shopper="ann@shop.EXAMPLE") == [bot, late, early]
    assert await ids(shopper="u-bob") == [failed]
    assert await ids(shopper="nobody@shop.example") == []
    assert await ids(tag="refund", status="failed") == []
    assert await ids(tag="refund", sender="user", since="2026-11-02") == [late]
    hit = (await search(searching, q="refund", shopper="u-bob"))["results"][0]
    assert (hit["userId"], hit["guestEmail"], hit["tags"]) == ("u-bob", None, [])
    tagged = (await search(searching, q="refund", tag="refund"))["results"][0]
    assert (tagged["guestEmail"], tagged["tags"]) == ("Ann@Shop.example", ["refund"])


async def test_rating_filter_takes_conversations_by_their_rating(searching: RunningChatd) -> None:
    seed = Seeder(searching.services.pool)
    sids = [await seed.session(f"0b6e2c1f-9a3d-4e5b-8c7f-00000000010{n}") for n in range(4)]
    said = [await seed.say(sid, f"parcel {n}") for n, sid in enumerate(sids)]
    async with searching.services.pool.connection() as conn:
        for sid, rating in ((sids[0], 5), (sids[1], 2), (sids[2], 5)):  # sids[3] is not rated
            await conn.execute(
                "INSERT INTO chat_ratings (session_id, rating) VALUES (%s, %s)", (sid, rating)
            )

    async def ids(**params: Any) -> list[str]:
        return [h["messageId"] for h in (await search(searching, q="parcel", **params))["results"]]

    assert await ids() == said[::-1]
    assert await ids(rating="5") == [said[2], said[0]]
    assert await ids(rating="2") == [said[1]]
    assert await ids(rating="1") == []
    assert await ids(rating="rated") == [said[2], said[1], said[0]]
    assert await ids(rating="unrated") == [said[3]]
    assert await ids(rating="5", sort="relevance") == [said[2], said[0]]


async def test_a_long_message_is_cut_around_its_match_and_marks_cannot_be_faked(
    searching: RunningChatd,
) -> None:
    seed = Seeder(searching.services.pool)
    sid = await seed.session("0b6e2c1f-9a3d-4e5b-8c7f-00000000000c")
    words = " ".join(f"w{n}" for n in range(100))
    await seed.say(sid, f"{words} invoice {words}")
    await seed.say(sid, "fake \ue000mark\ue001 of an invoice")
    long, fake = (await search(searching, q="invoice"))["results"][::-1]
    text = "".join(s["text"] for s in long["snippet"])
    assert text.startswith("… w")
    assert text.endswith(" …")
    assert len(text.split()) < 40
    assert marked(long) == ["invoice"]
    assert marked(fake) == ["invoice"]
    assert "".join(s["text"] for s in fake["snippet"]) == "fake mark of an invoice"


# --- another language later ---------------------------------------------------------------------


async def test_reindex_moves_stored_messages_to_the_new_language(pool: Pool) -> None:
    seed = Seeder(pool)
    sid = await seed.session("0b6e2c1f-9a3d-4e5b-8c7f-00000000000d")
    for n in range(25):
        await seed.say(sid, f"Die Schuhe Nummer {n}")
    assert await reindex_todo(pool, "german") == (25, 25)
    seen: list[tuple[int, int]] = []
    done = await reindex(
        pool, "german", batch=10, on_progress=lambda p: seen.append((p.seen, p.moved))
    )
    assert (done.seen, done.moved) == (25, 25)
    assert seen == [(10, 10), (20, 20), (25, 25)]
    assert await reindex_todo(pool, "german") == (0, 25)
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) AS n FROM chat_messages"
                " WHERE search @@ websearch_to_tsquery('german', 'Schuh')"
            )
        ).fetchone()
        assert row == {"n": 25}
        await conn.execute(
            "INSERT INTO chat_messages (id, session_id, sender_type, content, seq)"
            " VALUES ('new', %s, 'user', 'Neue Schuhe', 99)",
            [sid],
        )
        row = await (
            await conn.execute("SELECT search_config FROM chat_messages WHERE id = 'new'")
        ).fetchone()
        assert row == {"search_config": "german"}  # new messages: the language now set
    again = await reindex(pool, "german")
    assert (again.seen, again.moved) == (26, 0)
    forced = await reindex(pool, "german", everything=True)
    assert (forced.seen, forced.moved) == (26, 26)


async def test_a_language_postgresql_lacks_is_a_config_error(pool: Pool) -> None:
    with pytest.raises(ConfigError, match=r"search\.language: .*'klingon'.*english"):
        await apply_search_language(pool, "klingon")
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT config FROM chat_search_settings")).fetchone()
    assert row == {"config": "simple"}


# --- bad input ----------------------------------------------------------------------------------

BAD = [
    ({}, "missing_field", "q"),
    ({"q": ""}, "invalid_query", "q"),
    ({"q": "   "}, "invalid_query", "q"),
    ({"q": "the of and"}, "empty_query", "q"),  # English stop words only
    ({"q": "!!! ???"}, "empty_query", "q"),
    ({"q": "a\x01b"}, "invalid_query", "q"),
    ({"q": "x" * 256}, "invalid_query", "q"),
    ({"q": "x", "since": "yesterday"}, "invalid_query", "since"),
    ({"q": "x", "until": "2026-13-01"}, "invalid_query", "until"),
    ({"q": "x", "since": "99999999d"}, "invalid_query", "since"),
    ({"q": "x", "tag": "-bad"}, "invalid_tag", "tag"),
    ({"q": "x", "status": "open"}, "invalid_query", "status"),
    ({"q": "x", "sender": "staff"}, "invalid_query", "sender"),
    ({"q": "x", "sort": "oldest"}, "invalid_query", "sort"),
    ({"q": "x", "page": "0"}, "invalid_query", "page"),
    ({"q": "x", "page": "-1"}, "invalid_query", "page"),
    ({"q": "x", "limit": "51"}, "invalid_query", "limit"),
    ({"q": "x", "page": "51", "limit": "20"}, "page_too_deep", "page"),
    ({"q": "x", "shopper": "\x00"}, "invalid_query", "shopper"),
    ({"q": "x", "rating": "0"}, "invalid_query", "rating"),
    ({"q": "x", "rating": "6"}, "invalid_query", "rating"),
    ({"q": "x", "rating": "good"}, "invalid_query", "rating"),
    ({"q": "x", "user": "ann"}, "unknown_field", "user"),
]


@pytest.mark.parametrize(("params", "code", "field"), BAD)
async def test_bad_searches_are_400_naming_the_parameter_and_change_nothing(
    searching: RunningChatd, params: dict[str, str], code: str, field: str
) -> None:
    pool = searching.services.pool
    before = await table_counts(pool)
    async with searching.client(headers=AUTH) as c:
        response = await c.get("/api/admin/search", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["field"] == field
    assert await table_counts(pool) == before


async def test_search_needs_the_admin_token(searching: RunningChatd) -> None:
    async with searching.client() as c:
        response = await c.get("/api/admin/search", params={"q": "refund"})
    assert response.status_code == 401
    assert response.headers["Cache-Control"] == "no-store"


async def test_the_search_answer_matches_its_model(searching: RunningChatd) -> None:
    async with httpx.AsyncClient(base_url=searching.url, headers=AUTH) as c:
        document = (await c.get("/api/openapi.json")).json()
    operation = document["paths"]["/api/admin/search"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert names == {
        "q",
        "since",
        "until",
        "tag",
        "rating",
        "status",
        "sender",
        "shopper",
        "handoff",
        "state",
        "agent",
        "sort",
        "page",
        "limit",
    }


async def test_a_language_postgresql_lacks_stops_the_start(database_url: str) -> None:
    refused: list[str] = []
    try:
        async with trio.open_nursery() as nursery:
            await start(nursery, database_url, "klingon")
    except* ConfigError as group:
        refused = [str(e) for e in leaves(group)]
    assert len(refused) == 1
    assert refused[0].startswith("search.language: PostgreSQL has no text search configuration")


def leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]
