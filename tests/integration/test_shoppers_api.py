"""A shopper's data on request through the admin API on a real chatd and PostgreSQL: export (JSON
and text), deletion (every table, the search index, other shoppers untouched, the audit), and
bad input (a 4xx naming the problem, nothing changed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from chatd.db.queries import query
from tests.chat import table_counts
from tests.conftest import RunningChatd
from tests.e2e.test_shopper_cli import ATTACHMENT, rows_of, searchable, seed
from tests.integration.test_search import TOKEN, start

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def served(nursery: trio.Nursery, database_url: str) -> AsyncIterator[RunningChatd]:
    chatd = await start(nursery, database_url, "simple")
    pool = chatd.services.pool
    await seed(pool, "ann-1", email="Ann@Shop.example", word="kayak")
    await seed(pool, "ann-2", email="ann@shop.example", word="kayak")
    await seed(pool, "bob-1", user_id="u-bob", word="tent")
    yield chatd
    chatd.stop.set()


async def post(chatd: RunningChatd, path: str, body: Any) -> Any:
    async with chatd.client(headers=AUTH) as c:
        return await c.post(f"/api/admin/shoppers/{path}", json=body)


async def test_export_as_json_and_text(served: RunningChatd) -> None:
    response = await post(served, "export", {"email": "ANN@shop.example"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Disposition"] == 'attachment; filename="shopper-data.json"'
    doc = response.json()
    assert doc["shopper"] == {"email": "ann@shop.example"}
    assert [s["session"]["id"] for s in doc["sessions"]] == ["ann-1", "ann-2"]
    assert doc["sessions"][1]["messages"][1]["metadata"]["attachments"] == [ATTACHMENT]
    text = await post(served, "export", {"userId": "u-bob", "format": "text"})
    assert text.status_code == 200
    assert text.headers["Content-Type"].startswith("text/plain")
    assert "Shopper: Where is my tent order?" in text.text
    assert "attachment: https://shop.example/invoices/77.pdf" in text.text
    nobody = await post(served, "export", {"userId": "nobody"})
    assert nobody.json()["sessions"] == []


async def test_delete_leaves_nothing_of_theirs_and_records_it(served: RunningChatd) -> None:
    pool = served.services.pool
    bob = await rows_of(pool, ["bob-1"])
    response = await post(served, "delete", {"email": "ann@shop.example", "confirm": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["vacuumed"] is True
    erasure = body["erasure"]
    assert erasure["deleted"]["chat_sessions"] == 2
    assert erasure["deleted"]["chat_messages"] == 4
    assert erasure["deleted"]["chat_webhook_queue"] == 2
    assert erasure["deleted"]["chat_tags"] == 2
    assert erasure["requestedBy"] == "admin api from 127.0.0.1"
    assert erasure["subject"] == "email"
    assert all(n == 0 for n in (await rows_of(pool, ["ann-1", "ann-2"])).values())
    assert await searchable(pool, "kayak") == 0
    assert await rows_of(pool, ["bob-1"]) == bob
    assert await searchable(pool, "tent") == 2
    async with served.client(headers=AUTH) as c:
        listed = (await c.get("/api/admin/shoppers/erasures")).json()["erasures"]
    assert [e["id"] for e in listed] == [erasure["id"]]
    assert "ann" not in str(listed).lower()


BAD = [
    ({}, 400, "invalid_shopper"),
    ({"userId": "u-bob", "email": "ann@shop.example"}, 400, "invalid_shopper"),
    ({"email": "   "}, 400, "invalid_shopper"),
    ({"email": ""}, 400, None),
    ({"userId": 7}, 400, None),
    ({"email": "ann@shop.example", "who": "me"}, 400, "unknown_field"),
]


@pytest.mark.parametrize("action", ["export", "delete"])
@pytest.mark.parametrize(("body", "status", "code"), BAD)
async def test_bad_requests_are_4xx_and_change_nothing(
    served: RunningChatd, action: str, body: dict[str, Any], status: int, code: str | None
) -> None:
    pool = served.services.pool
    before = await table_counts(pool)
    if action == "delete":
        body = {**body, "confirm": True}
    response = await post(served, action, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    assert await table_counts(pool) == before


@pytest.mark.parametrize(
    "body",
    [
        {"email": "ann@shop.example"},
        {"email": "ann@shop.example", "confirm": False},
        {"email": "ann@shop.example", "confirm": "yes"},
    ],
)
async def test_a_deletion_must_be_confirmed(served: RunningChatd, body: dict[str, Any]) -> None:
    before = await table_counts(served.services.pool)
    response = await post(served, "delete", body)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "confirm"
    assert await table_counts(served.services.pool) == before


async def test_export_format_and_body_are_checked(served: RunningChatd) -> None:
    bad = await post(served, "export", {"userId": "u-bob", "format": "csv"})
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "format"
    async with served.client(headers=AUTH) as c:
        broken = await c.post(
            "/api/admin/shoppers/delete",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
    assert broken.status_code == 400
    assert await rows_of(served.services.pool, ["bob-1"]) != {}


async def test_shopper_routes_need_the_admin_token(served: RunningChatd) -> None:
    async with served.client() as c:
        for path in ("export", "delete"):
            response = await c.post(
                f"/api/admin/shoppers/{path}", json={"userId": "u-bob", "confirm": True}
            )
            assert response.status_code == 401
        assert (await c.get("/api/admin/shoppers/erasures")).status_code == 401
    assert (await rows_of(served.services.pool, ["bob-1"]))["chat_messages"] == 2


async def test_the_vacuum_after_a_deletion_names_every_table_it_reaches(
    served: RunningChatd,
) -> None:
    """A table added later with a session_id column is emptied by the deletion (found by its
    column) but vacuumed only if vacuum_erased names it: this says when it does not."""
    async with served.services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT c.table_name FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE c.table_schema = current_schema() AND c.column_name = 'session_id'"
            " AND t.table_type = 'BASE TABLE'"
        )
        reached = {r["table_name"] for r in await cur.fetchall()} | {"chat_sessions"}
    tables = query("vacuum_erased").split("VACUUM (INDEX_CLEANUP ON)", 1)[1]
    named = {name.strip() for name in tables.split(",")}
    assert reached <= named, reached - named
