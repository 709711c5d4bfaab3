"""Search and export by handoff, conversation state and agent, on a real chatd, PostgreSQL and n8n
sink: the conversations are handed off, taken, answered, passed on and closed through the real
inbox API, so the filters read what chatd itself writes. Bad values are a 400 changing nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from chatd.db.export import ExportRange, transcript_pages
from tests.chat import Session, new_session, send, table_counts
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.sink import Reply
from tests.staff import Staff, add_agent, sign_in

TOKEN = "admin-token-for-the-handoff-search-tests-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UNKNOWN = "0b6e2c1f-9a3d-4e5b-8c7f-1d2e3f4a5b6c"


@dataclass
class World:
    pipe: Pipeline
    anna: Staff
    ben: Staff
    carl: Staff  # signed in, took part in nothing
    bot_only: str  # the bot answered; nobody asked for a person
    waiting: str  # the shopper asked for a person; nobody took it
    passed: str  # asked; Anna took it, answered, passed it to Ben (human, Ben holds it)
    closed: str  # Ben took it from the bot unasked, then closed it


@pytest.fixture
async def world(nursery: trio.Nursery, database_url: str) -> AsyncIterator[World]:
    pipe = await open_pipeline(nursery, database_url, admin={"token": TOKEN})
    pipe.sink.behave(Reply("Bot here."))
    pool = pipe.chatd.services.pool
    anna, ben, carl = [
        await sign_in(pipe.chatd.client(), await add_agent(pool, name))
        for name in ("Anna", "Ben", "Carl")
    ]
    async with pipe.chatd.client() as shopper:
        chats = [await chat(pipe, shopper, f"where is my parcel {n}?") for n in range(4)]
        bot_only, waiting, passed, closed = chats
        for asking in (waiting, passed):
            response = await shopper.post(
                "/api/chat/handoff", headers=asking.auth, json={"sessionId": asking.id}
            )
            assert response.status_code == 200, response.text
    base = "/api/inbox/conversations"
    for who, path, body in [
        (anna, f"{passed.id}/take", None),
        (anna, f"{passed.id}/messages", {"content": "Your parcel left the depot today."}),
        (anna, f"{passed.id}/transfer", {"agentId": ben.agent.id}),
        (ben, f"{closed.id}/take", None),
        (ben, f"{closed.id}/close", None),
    ]:
        response = await who.post(f"{base}/{path}", body)
        assert response.status_code == 200, response.text
    yield World(pipe, anna, ben, carl, bot_only.id, waiting.id, passed.id, closed.id)
    for signed_in in (anna, ben, carl):
        await signed_in.client.aclose()
    pipe.chatd.stop.set()


async def chat(pipe: Pipeline, shopper: Any, content: str) -> Session:
    session = await new_session(shopper)
    assert (await send(shopper, session, content)).status_code == 200
    await pipe.wait_messages(session, 2)  # the bot answered before anyone steps in
    return session


async def found(world: World, **params: str) -> set[str]:
    """The conversations whose messages match "parcel" with these filters."""
    async with world.pipe.chatd.client(headers=AUTH) as c:
        response = await c.get("/api/admin/search", params={"q": "parcel", **params})
    assert response.status_code == 200, response.text
    return {hit["sessionId"] for hit in response.json()["results"]}


async def test_search_by_handoff_state_and_agent(world: World) -> None:
    w = world
    everyone = {w.bot_only, w.waiting, w.passed, w.closed}
    assert await found(w) == everyone
    assert await found(w, handoff="yes") == {w.waiting, w.passed, w.closed}
    assert await found(w, handoff="no") == {w.bot_only}
    assert await found(w, status="bot_only") == {w.bot_only}
    assert await found(w, status="bot_only", handoff="no") == {w.bot_only}
    assert await found(w, state="bot") == {w.bot_only}
    assert await found(w, state="waiting") == {w.waiting}
    assert await found(w, state="human") == {w.passed}
    assert await found(w, state="closed") == {w.closed}
    assert await found(w, agent=w.anna.agent.id) == {w.passed}  # took, answered, passed on
    assert await found(w, agent=w.ben.agent.email.upper()) == {w.passed, w.closed}
    assert await found(w, agent=w.carl.agent.id) == set()
    assert await found(w, handoff="yes", state="closed", agent=w.ben.agent.id) == {w.closed}
    assert await found(w, handoff="no", agent=w.ben.agent.id) == set()


@pytest.mark.parametrize("sort", ["newest", "relevance"])
async def test_an_agents_message_is_a_search_hit(world: World, sort: str) -> None:
    async with world.pipe.chatd.client(headers=AUTH) as c:
        response = await c.get(
            "/api/admin/search", params={"q": "depot", "sender": "agent", "sort": sort}
        )
    assert response.status_code == 200, response.text
    hits = response.json()["results"]
    assert [(h["sessionId"], h["senderType"], h["terms"]) for h in hits] == [
        (world.passed, "agent", ["depot"])
    ]


async def test_export_by_handoff_state_and_agent(world: World) -> None:
    w = world
    pool = w.pipe.chatd.services.pool

    async def exported(**spec: Any) -> set[str]:
        return {
            t.session.id async for page in transcript_pages(pool, ExportRange(**spec)) for t in page
        }

    assert await exported(handed_off=True) == {w.waiting, w.passed, w.closed}
    assert await exported(handed_off=False) == {w.bot_only}
    assert await exported(state="waiting") == {w.waiting}
    assert await exported(state="closed", handed_off=True) == {w.closed}
    assert await exported(agent_id=w.anna.agent.id) == {w.passed}
    assert await exported(agent_id=w.ben.agent.id) == {w.passed, w.closed}
    assert await exported(agent_id=w.carl.agent.id) == set()


BAD = [
    ({"handoff": "maybe"}, "invalid_query", "handoff"),
    ({"handoff": "true"}, "invalid_query", "handoff"),
    ({"state": "open"}, "invalid_query", "state"),
    ({"state": "HUMAN"}, "invalid_query", "state"),
    ({"status": "bot_only", "handoff": "yes"}, "invalid_query", "handoff"),
    ({"agent": "nobody@shop.example"}, "unknown_agent", "agent"),
    ({"agent": UNKNOWN}, "unknown_agent", "agent"),
    ({"agent": "anna"}, "unknown_agent", "agent"),
    ({"agent": "anna@shop.example\x00"}, "invalid_query", "agent"),
    ({"agent": "x" * 300}, "invalid_query", "agent"),
]


@pytest.fixture
async def bare(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(nursery, database_url, admin={"token": TOKEN})
    await add_agent(pipe.chatd.services.pool, "Anna")
    yield pipe
    pipe.chatd.stop.set()


@pytest.mark.parametrize(("params", "code", "field"), BAD)
async def test_bad_filters_are_400_naming_them_and_change_nothing(
    bare: Pipeline, params: dict[str, str], code: str, field: str
) -> None:
    pool = bare.chatd.services.pool
    bare.sink.behave(Reply("Bot here."))
    async with bare.chatd.client() as shopper:
        await chat(bare, shopper, "where is my parcel?")  # settled: nothing moves meanwhile
    before = await table_counts(pool)
    async with bare.chatd.client(headers=AUTH) as c:
        response = await c.get("/api/admin/search", params={"q": "parcel", **params})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert field in error["message"]
    assert await table_counts(pool) == before
