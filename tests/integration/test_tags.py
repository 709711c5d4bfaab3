"""Conversation tags on a real chatd, PostgreSQL and n8n sink: set by n8n (a reply's
metadata.tags and "tag" actions, kept from the shopper), by staff through the admin API, listed
with counts, filtering the sessions list; the normal form is the same in Python and SQL; bad
input is a 4xx that changes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatd.core.tags import MAX_TAGS_PER_SESSION, normalise_tag
from chatd.db.pool import Pool
from tests.chat import Session, new_session, send
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.sink import Reply, Status

TOKEN = "admin-token-for-the-tag-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UNKNOWN = "0b6e2c1f-9a3d-4e5b-8c7f-1d2e3f4a5b6c"


@pytest.fixture
async def tagged(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(nursery, database_url, admin={"token": TOKEN})
    pipe.sink.behave(Reply("Happy to help."))
    yield pipe
    pipe.chatd.stop.set()


def reply(body: dict[str, Any]) -> Status:
    return Status(200, json.dumps(body).encode())


async def tags_of(pool: Pool, session_id: str) -> list[tuple[str, str]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT tag, source FROM chat_tags WHERE session_id = %s ORDER BY tag", [session_id]
        )
        return [(row["tag"], row["source"]) for row in await cur.fetchall()]


async def chat(pipe: Pipeline, content: str = "Hello") -> tuple[Session, list[dict[str, Any]]]:
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        assert (await send(client, session, content)).status_code == 200
    return session, await pipe.wait_messages(session, 2)


async def test_n8n_tags_a_conversation_and_the_shopper_never_sees_them(tagged: Pipeline) -> None:
    tagged.sink.behave(
        reply(
            {
                "response": {"content": "A refund is on its way.", "quickReplies": ["Thanks"]},
                "metadata": {"tags": ["Refund", "  order status ", 7, "bad/tag"], "intent": "x"},
                "actions": [
                    {"type": "tag", "payload": {"tags": ["VIP", "refund"]}},
                    {"type": "tag", "payload": {"tags": "escalate"}},
                    {"type": "redirect", "payload": {"url": "https://shop.example/returns"}},
                ],
            }
        )
    )
    session, (_, bot) = await chat(tagged, "I want my money back")
    assert await tags_of(tagged.chatd.services.pool, session.id) == [
        ("escalate", "n8n"),
        ("order-status", "n8n"),
        ("refund", "n8n"),
        ("vip", "n8n"),
    ]
    # What the shopper's browser gets: the reply without its tags, everything else kept.
    assert bot["content"] == "A refund is on its way."
    assert bot["metadata"] == {
        "quickReplies": ["Thanks"],
        "n8n": {"intent": "x"},
        "actions": [{"type": "redirect", "payload": {"url": "https://shop.example/returns"}}],
    }
    assert "escalate" not in json.dumps(bot)
    assert "vip" not in json.dumps(bot).lower()


async def test_a_reply_with_only_tags_leaves_no_empty_metadata(tagged: Pipeline) -> None:
    tagged.sink.behave(
        reply(
            {
                "response": "Noted.",
                "metadata": {"tags": "billing"},
                "actions": [{"type": "tag", "payload": {"tags": ["x"]}}],
            }
        )
    )
    session, (_, bot) = await chat(tagged)
    assert bot["metadata"] == {}
    assert [t for t, _ in await tags_of(tagged.chatd.services.pool, session.id)] == ["billing", "x"]


async def test_n8n_tags_stop_at_the_conversations_limit(tagged: Pipeline) -> None:
    many = [f"t{n:02d}" for n in range(30)]
    tagged.sink.behave(reply({"response": "ok", "metadata": {"tags": many}}))
    session, _ = await chat(tagged)
    first = [t for t, _ in await tags_of(tagged.chatd.services.pool, session.id)]
    assert first == many[:20]  # at most 20 per reply
    tagged.sink.behave(
        reply({"response": "more", "metadata": {"tags": [f"u{n:02d}" for n in range(40)]}})
    )
    async with tagged.chatd.client() as client:
        assert (await send(client, session, "again")).status_code == 200
    await tagged.wait_messages(session, 4)
    held = [t for t, _ in await tags_of(tagged.chatd.services.pool, session.id)]
    assert len(held) == 40  # 20 more: one reply's worth, under the 50 cap
    tagged.sink.behave(
        reply({"response": "yet more", "metadata": {"tags": [f"v{n:02d}" for n in range(40)]}})
    )
    async with tagged.chatd.client() as client:
        assert (await send(client, session, "and again")).status_code == 200
    await tagged.wait_messages(session, 6)
    assert len(await tags_of(tagged.chatd.services.pool, session.id)) == MAX_TAGS_PER_SESSION


async def admin(pipe: Pipeline) -> httpx.AsyncClient:
    return pipe.chatd.client(headers=AUTH)


async def test_staff_tag_untag_list_and_filter(tagged: Pipeline) -> None:
    ann, _ = await chat(tagged, "first")
    bob, _ = await chat(tagged, "second")
    async with await admin(tagged) as c:
        added = await c.put(f"/api/admin/sessions/{ann.id}/tags/Refund%20request")
        assert added.status_code == 200, added.text
        assert added.json() == {"sessionId": ann.id, "tags": ["refund-request"]}
        again = await c.put(f"/api/admin/sessions/{ann.id.upper()}/tags/refund-request")
        assert again.json()["tags"] == ["refund-request"]  # idempotent
        assert (await c.put(f"/api/admin/sessions/{ann.id}/tags/vip")).json()["tags"] == [
            "refund-request",
            "vip",
        ]
        assert (await c.put(f"/api/admin/sessions/{bob.id}/tags/vip")).status_code == 200
        counts = (await c.get("/api/admin/tags")).json()
        assert counts == {
            "tags": [{"tag": "vip", "sessions": 2}, {"tag": "refund-request", "sessions": 1}]
        }
        listed = (await c.get("/api/admin/sessions", params={"tag": "Refund Request"})).json()
        assert [s["id"] for s in listed["sessions"]] == [ann.id]
        assert listed["sessions"][0]["tags"] == ["refund-request", "vip"]
        transcript = (await c.get(f"/api/admin/sessions/{ann.id}/transcript")).json()
        assert transcript["session"]["tags"] == ["refund-request", "vip"]
        text = await c.get(f"/api/admin/sessions/{ann.id}/transcript", params={"format": "text"})
        assert "Tags: refund-request, vip" in text.text
        removed = await c.delete(f"/api/admin/sessions/{ann.id}/tags/VIP")
        assert removed.json() == {"sessionId": ann.id, "tags": ["refund-request"]}
        assert (await c.get("/api/admin/tags", params={"limit": 1})).json()["tags"] == [
            {"tag": "refund-request", "sessions": 1}
        ]
    assert await tags_of(tagged.chatd.services.pool, ann.id) == [("refund-request", "staff")]


async def test_staff_cannot_go_past_the_limit(tagged: Pipeline) -> None:
    session, _ = await chat(tagged)
    async with await admin(tagged) as c:
        for n in range(MAX_TAGS_PER_SESSION):
            assert (await c.put(f"/api/admin/sessions/{session.id}/tags/t{n}")).status_code == 200
        refused = await c.put(f"/api/admin/sessions/{session.id}/tags/one-more")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "too_many_tags"
        held = await c.put(f"/api/admin/sessions/{session.id}/tags/t1")  # already there: fine
        assert held.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("PUT", "/api/admin/sessions/{sid}/tags/-leading-dash", 400, "invalid_tag"),
        ("PUT", "/api/admin/sessions/{sid}/tags/" + "x" * 51, 400, "invalid_tag"),
        ("PUT", "/api/admin/sessions/{sid}/tags/caf%C3%A9", 400, "invalid_tag"),
        ("PUT", "/api/admin/sessions/{sid}/tags/a%00b", 400, "invalid_tag"),
        ("PUT", "/api/admin/sessions/{sid}/tags/%20%20", 400, "invalid_tag"),
        ("PUT", "/api/admin/sessions/not-an-id/tags/ok", 400, "invalid_id"),
        ("PUT", f"/api/admin/sessions/{UNKNOWN}/tags/ok", 404, "session_not_found"),
        ("DELETE", "/api/admin/sessions/{sid}/tags/absent", 404, "tag_not_found"),
        ("DELETE", f"/api/admin/sessions/{UNKNOWN}/tags/ok", 404, "session_not_found"),
        ("GET", "/api/admin/tags?limit=0", 400, "invalid_query"),
        ("GET", "/api/admin/tags?limit=x", 400, "invalid_query"),
        ("GET", "/api/admin/tags?tag=x", 400, "unknown_field"),
        ("GET", "/api/admin/sessions?tag=%21%21", 400, "invalid_tag"),
    ],
)
async def test_bad_tag_requests_are_4xx_and_change_nothing(
    tagged: Pipeline, method: str, path: str, status: int, code: str
) -> None:
    session, _ = await chat(tagged)
    async with await admin(tagged) as c:
        assert (await c.put(f"/api/admin/sessions/{session.id}/tags/kept")).status_code == 200
        before = await tags_of(tagged.chatd.services.pool, session.id)
        response = await c.request(method, path.format(sid=session.id))
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert await tags_of(tagged.chatd.services.pool, session.id) == before


async def test_tag_routes_need_the_admin_token(tagged: Pipeline) -> None:
    session, _ = await chat(tagged)
    async with tagged.chatd.client() as c:
        response = await c.put(f"/api/admin/sessions/{session.id}/tags/vip")
        assert response.status_code == 401
        assert (await c.get("/api/admin/tags")).status_code == 401
    assert await tags_of(tagged.chatd.services.pool, session.id) == []


# --- one rule in Python and SQL -----------------------------------------------------------------

CASES = [
    "Refund",
    " refund ",
    "order status",
    "Order\tStatus\n",
    "a  b",
    "x" * 50,
    "x" * 51,
    "",
    "   ",
    "-x",
    "_x",
    "x-",
    "a.b:c_d-e",
    "café",
    "ÄRGER",
    "a/b",
    "a,b",
    "İstanbul",
    "ß",
    "1",
    "a\u00a0b",
    "a\u2003b",
    "\u00a0a",
    "K",
    "\u212a",  # Kelvin sign: lowercases to k in Unicode
]


def sql_tags(url: str, raws: list[str]) -> list[str | None]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            "SELECT chatd_tag(r) FROM unnest(%s::text[]) WITH ORDINALITY AS u(r, n) ORDER BY n",
            [raws],
        )
        return [row[0] for row in cur.fetchall()]


def test_python_and_sql_normalise_alike(database_url: str) -> None:
    assert sql_tags(database_url, CASES) == [normalise_tag(raw) for raw in CASES]
    assert normalise_tag(" Order  Status ") == "order-status"
    assert normalise_tag("\u212a") is None  # never lowered outside ASCII


# The database only answers a pure function here: one for every example is fine.
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raws=st.lists(
        st.text(
            alphabet=st.one_of(
                st.sampled_from("aZz09 \t\r\n_.:-/"),
                st.characters(exclude_characters="\x00", exclude_categories=("Cs",)),
            ),
            max_size=60,
        ),
        min_size=1,
        max_size=20,
    )
)
def test_python_and_sql_normalise_alike_for_any_text(database_url: str, raws: list[str]) -> None:
    assert sql_tags(database_url, raws) == [normalise_tag(raw) for raw in raws]
