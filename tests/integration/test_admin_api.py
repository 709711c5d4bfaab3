"""The admin API against a real chatd, PostgreSQL and n8n sink: auth, overview, dead letters
(replay, purge), sessions and transcripts; bad input is a 4xx naming the problem and changes
nothing.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from structlog.testing import capture_logs

from tests.chat import Session, new_session, send, table_counts
from tests.conftest import RunningChatd
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.sink import Reply, Status
from tests.ws import join, open_ws, receive_type

TOKEN = "admin-token-for-the-tests-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UNKNOWN = "0b6e2c1f-9a3d-4e5b-8c7f-1d2e3f4a5b6c"  # well-formed, never made

ENDPOINTS = [
    ("GET", "/api/admin/overview"),
    ("GET", "/api/admin/dead"),
    ("POST", "/api/admin/dead/some-job/retry"),
    ("POST", "/api/admin/dead/retry-all"),
    ("DELETE", "/api/admin/dead/some-job"),
    ("POST", "/api/admin/dead/purge"),
    ("GET", "/api/admin/sessions"),
    ("GET", "/api/admin/sessions/some-session/transcript"),
]


@pytest.fixture
async def admin(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(nursery, database_url, admin={"token": TOKEN})
    pipe.sink.behave(Reply("Happy to help."))
    yield pipe
    pipe.chatd.stop.set()


def client(pipe: Pipeline) -> httpx.AsyncClient:
    return pipe.chatd.client(headers=AUTH)


async def dead_letter(pipe: Pipeline, content: str, **session: Any) -> tuple[Session, str]:
    """A message n8n refused (HTTP 400: dead at once); returns its session and message id."""
    pipe.sink.behave(Status(400, b'{"message": "Bad request"}'))
    async with pipe.chatd.client() as c:
        chat = await new_session(c, **session)
        message_id = (await send(c, chat, content)).json()["messageId"]
    await pipe.wait_job(message_id, "dead")
    return chat, message_id


async def job_id(pipe: Pipeline, message_id: str) -> str:
    async with pipe.chatd.services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id FROM chat_webhook_queue WHERE message_id = %s", [message_id]
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row["id"])


async def job_count(pipe: Pipeline, status: str) -> int:
    async with pipe.chatd.services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM chat_webhook_queue WHERE status = %s", [status]
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


# --- auth --------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_a_missing_token_is_401(admin: Pipeline, method: str, path: str) -> None:
    async with admin.chatd.client() as c:
        response = await c.request(method, path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_admin_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wrong",
        f"Bearer {TOKEN[:-1]}g",  # differs only in the last character
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        "Bearer",
        TOKEN,
    ],
)
async def test_a_wrong_token_is_401_and_is_never_logged(
    admin: Pipeline, authorization: str
) -> None:
    counts = await table_counts(admin.chatd.services.pool)
    with capture_logs() as logs:
        async with admin.chatd.client() as c:
            response = await c.post(
                "/api/admin/dead/retry-all", headers={"Authorization": authorization}
            )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_admin_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["Cache-Control"] == "no-store"
    assert TOKEN[:-1] not in response.text
    assert any(entry["event"] == "admin_auth_failed" for entry in logs)
    assert not any(TOKEN[:10] in repr(entry) or "wrong" in repr(entry) for entry in logs)
    assert await table_counts(admin.chatd.services.pool) == counts


async def test_an_address_guessing_tokens_is_refused_until_its_window_passes(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(
        nursery,
        database_url,
        admin={"token": TOKEN},
        server={"operator_auth_failures_max": 3, "operator_auth_failure_window_seconds": 1.0},
    )
    async with pipe.chatd.client() as c:
        for _ in range(5):  # missing tokens are not guesses (a page before its login)
            assert (await c.get("/api/admin/overview")).status_code == 401
        for n in range(3):
            wrong = await c.get("/api/admin/overview", headers={"Authorization": f"Bearer {n}"})
            assert wrong.json()["error"]["code"] == "bad_admin_token"
        with capture_logs() as logs:
            refused = await c.get("/api/admin/overview", headers=AUTH)  # even the right one
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_auth_failures"
        assert 0 < float(refused.headers["Retry-After"]) <= 1
        assert refused.headers["Cache-Control"] == "no-store"
        assert [e["reason"] for e in logs if e["event"] == "admin_auth_failed"] == [
            "too_many_auth_failures"
        ]
        await trio.sleep(1.0)
        assert (await c.get("/api/admin/overview", headers=AUTH)).status_code == 200


async def test_the_right_token_in_any_case_of_scheme_is_accepted(admin: Pipeline) -> None:
    async with admin.chatd.client() as c:
        response = await c.get("/api/admin/overview", headers={"Authorization": f"bearer  {TOKEN}"})
    assert response.status_code == 200


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_without_an_admin_token_configured_the_api_is_closed(
    chatd: RunningChatd, method: str, path: str
) -> None:
    async with chatd.client() as c:
        response = await c.request(method, path, headers={"Authorization": "Bearer anything"})
        with_token = await c.request(method, path, headers=AUTH)
    for answer in (response, with_token):
        assert answer.status_code == 404
        error = answer.json()["error"]
        assert error["code"] == "admin_disabled"
        assert "admin.token" in error["message"]
        assert "CHATD_ADMIN__TOKEN" in error["message"]
        assert answer.headers["Cache-Control"] == "no-store"


async def test_unknown_admin_paths_are_404_and_not_cached(admin: Pipeline) -> None:
    async with client(admin) as c:
        missing = await c.get("/api/admin/nothing-here")
        wrong_method = await c.put("/api/admin/overview")
    assert missing.status_code == 404
    assert wrong_method.status_code == 405
    assert missing.headers["Cache-Control"] == wrong_method.headers["Cache-Control"] == "no-store"


# --- overview ----------------------------------------------------------------------------


async def test_overview_counts_jobs_throughput_webhook_and_recent_errors(admin: Pipeline) -> None:
    async with admin.chatd.client() as c:
        chat = await new_session(c, guestEmail="ann@shop.example")
        first = (await send(c, chat, "Where is my order?")).json()["messageId"]
    await admin.wait_job(first, "completed")
    _, refused = await dead_letter(admin, "This one fails")
    async with client(admin) as c:
        response = await c.get("/api/admin/overview")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    data = response.json()
    assert data["queue"] == {
        "pending": 0,
        "processing": 0,
        "completedLastHour": 1,
        "dead": 1,
        "oldestPendingSeconds": 0,
    }
    throughput = data["throughput"]
    assert throughput["bucketSeconds"] == 10
    assert len(throughput["buckets"]) == 60
    assert sum(b["received"] for b in throughput["buckets"]) == 2
    assert sum(b["completed"] for b in throughput["buckets"]) == 1
    starts = [b["start"] for b in throughput["buckets"]]
    assert starts == sorted(starts)
    webhook = data["webhook"]
    assert webhook["dispatching"] is True
    assert webhook["target"] == {"kind": "n8n", "url": admin.sink.webhook_url}
    assert webhook["successRate"] == 0.5
    assert webhook["status"] == "warning"  # 50 %: between unhealthy and healthy
    assert webhook["process"]["delivered"] == 1
    assert webhook["process"]["dead"] == 1
    assert webhook["lastError"]
    assert webhook["cluster"] == {
        "windowSeconds": 300,
        "attempts": 2,
        "failures": 1,
        "completed": 1,
        "retrying": 0,
        "dead": 1,
        "failureRate": 0.5,
    }
    assert data["sessions"] == {"live": 2}
    assert data["process"]["connections"] == 0
    assert data["process"]["actors"] >= 1
    (error,) = data["recentErrors"]
    assert error["jobId"] == await job_id(admin, refused)
    assert error["messageId"] == refused
    assert error["content"] == "This one fails"
    assert error["status"] == "dead"
    assert error["httpStatus"] == 400
    assert error["error"]
    assert error["at"].endswith("Z")


async def test_overview_of_a_process_that_does_not_dispatch(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(
        nursery, database_url, admin={"token": TOKEN}, queue={"dispatch": False}
    )
    async with pipe.chatd.client() as c:
        chat = await new_session(c)
        await send(c, chat, "queued, nobody delivers here")
    async with client(pipe) as c:
        data = (await c.get("/api/admin/overview")).json()
    assert data["queue"]["pending"] == 1
    assert data["queue"]["oldestPendingSeconds"] >= 0
    assert data["webhook"]["status"] == "unknown"
    assert data["webhook"]["dispatching"] is False
    assert data["webhook"]["successRate"] is None
    assert "process" not in data["webhook"]
    assert data["webhook"]["cluster"]["failureRate"] is None
    pipe.chatd.stop.set()


# --- dead letters ------------------------------------------------------------------------


async def test_dead_letters_list_with_content_and_error_and_retry_delivers(
    nursery: trio.Nursery, database_url: str
) -> None:
    # Polling only every 60 s: the replayed job is delivered at once only if the retry wakes
    # the dispatchers (NOTIFY).
    admin = await open_pipeline(
        nursery, database_url, admin={"token": TOKEN}, queue={"poll_interval_seconds": 60}
    )
    chat, message_id = await dead_letter(admin, "Please deliver me")
    job = await job_id(admin, message_id)
    async with client(admin) as c:
        listed = (await c.get("/api/admin/dead")).json()
        (letter,) = listed["deadLetters"]
        assert listed["limit"] == 100
        assert letter["jobId"] == job
        assert letter["sessionId"] == chat.id
        assert letter["messageId"] == message_id
        assert letter["content"] == "Please deliver me"
        assert letter["httpStatus"] == 400
        assert letter["lastError"]
        assert letter["attempts"] == 1
        assert letter["deadAt"].endswith("Z")
        admin.sink.behave(Reply("Delivered after all."))
        retried = await c.post(f"/api/admin/dead/{job}/retry")
        assert retried.status_code == 200
        assert retried.json() == {"retried": 1}
        await admin.wait_job(message_id, "completed", timeout=5)
        again = await c.post(f"/api/admin/dead/{job}/retry")
        assert again.status_code == 404
        assert again.json()["error"]["code"] == "dead_letter_not_found"
        assert (await c.get("/api/admin/dead")).json()["deadLetters"] == []
    messages = await admin.wait_messages(chat, 3)  # the message, the fallback, the reply
    assert messages[0]["status"] == "delivered"
    assert messages[-1]["content"] == "Delivered after all."
    assert admin.sink.requests[-1].json["messageId"] == message_id
    admin.chatd.stop.set()


async def test_the_queue_command_lists_the_same_dead_letters_as_the_api(
    admin: Pipeline, database_url: str
) -> None:
    chat, _ = await dead_letter(admin, "Listed twice")
    async with client(admin) as c:
        (letter,) = (await c.get("/api/admin/dead")).json()["deadLetters"]
    env = {**os.environ, "DATABASE_URL": database_url}
    listed = await trio.run_process(
        [sys.executable, "-m", "chatd", "queue", "dead", "--json"],
        env=env,
        capture_stdout=True,
        capture_stderr=True,
    )
    assert [json.loads(line) for line in listed.stdout.decode().splitlines()] == [letter]
    text = await trio.run_process(
        [sys.executable, "-m", "chatd", "queue", "dead"],
        env=env,
        capture_stdout=True,
        capture_stderr=True,
    )
    assert text.stdout.decode().startswith(f"{letter['jobId']}  session {chat.id}  attempts 1")
    assert text.stderr.decode().strip().endswith("1 dead letter(s)")


async def test_retry_all_replays_every_dead_letter(admin: Pipeline) -> None:
    _, first = await dead_letter(admin, "one")
    _, second = await dead_letter(admin, "two")
    admin.sink.behave(Reply("ok"))
    async with client(admin) as c:
        response = await c.post("/api/admin/dead/retry-all")
        assert response.json() == {"retried": 2}
        await admin.wait_job(first, "completed")
        await admin.wait_job(second, "completed")
        assert (await c.post("/api/admin/dead/retry-all")).json() == {"retried": 0}


async def test_purge_one_dead_letter_and_purge_by_age(admin: Pipeline) -> None:
    _, first = await dead_letter(admin, "one")
    await dead_letter(admin, "two")
    await dead_letter(admin, "three")
    async with client(admin) as c:
        job = await job_id(admin, first)
        assert (await c.delete(f"/api/admin/dead/{job}")).json() == {"purged": 1}
        again = await c.delete(f"/api/admin/dead/{job}")
        assert again.status_code == 404
        assert again.json()["error"]["code"] == "dead_letter_not_found"
        young = await c.post("/api/admin/dead/purge", json={"olderThanSeconds": 3600})
        assert young.json() == {"purged": 0}
        assert await job_count(admin, "dead") == 2
        everything = await c.post("/api/admin/dead/purge", json={"olderThanSeconds": 0})
        assert everything.json() == {"purged": 2}
    assert await job_count(admin, "dead") == 0
    # the messages stay, marked failed
    async with admin.chatd.services.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM chat_messages WHERE status = 'failed'", []
        )
        assert (await cur.fetchone()) == {"n": 3}


async def test_purging_a_job_that_is_not_dead_is_404(admin: Pipeline) -> None:
    async with admin.chatd.client() as c:
        chat = await new_session(c)
        message_id = (await send(c, chat, "fine")).json()["messageId"]
    await admin.wait_job(message_id, "completed")
    job = await job_id(admin, message_id)
    async with client(admin) as c:
        assert (await c.delete(f"/api/admin/dead/{job}")).status_code == 404
        assert (await c.post(f"/api/admin/dead/{job}/retry")).status_code == 404
    assert (await admin.job(message_id))["status"] == "completed"


BAD_INPUT: list[tuple[str, str, Any, int, str, str | None]] = [
    ("GET", "/api/admin/dead?limit=abc", None, 400, "invalid_query", "limit"),
    ("GET", "/api/admin/dead?limit=-1", None, 400, "invalid_query", "limit"),
    ("GET", "/api/admin/dead?limit=0", None, 400, "invalid_query", "limit"),
    ("GET", "/api/admin/dead?limit=100000", None, 400, "invalid_query", "limit"),
    ("GET", "/api/admin/dead?limit=1.5", None, 400, "invalid_query", "limit"),
    ("GET", "/api/admin/dead?order=asc", None, 400, "unknown_field", "order"),
    ("GET", "/api/admin/sessions?limit=abc", None, 400, "invalid_query", "limit"),
    ("GET", "/api/admin/sessions?status=closed", None, 400, "invalid_query", "status"),
    ("GET", "/api/admin/sessions?q=a%00b", None, 400, "invalid_query", "q"),
    ("GET", "/api/admin/sessions?q=" + "x" * 300, None, 400, "invalid_query", "q"),
    ("POST", "/api/admin/dead/purge", {"olderThanSeconds": "x"}, 400, "invalid_field", None),
    ("POST", "/api/admin/dead/purge", {"olderThanSeconds": -1}, 400, "invalid_field", None),
    ("POST", "/api/admin/dead/purge", {"olderThanSeconds": True}, 400, "invalid_field", None),
    ("POST", "/api/admin/dead/purge", {"olderThanSeconds": 1e300}, 400, "invalid_field", None),
    ("POST", "/api/admin/dead/purge", {}, 400, "missing_field", None),
    ("POST", "/api/admin/dead/purge", {"olderThanSeconds": 1, "x": 1}, 400, "unknown_field", "x"),
    ("POST", "/api/admin/dead/purge", [], 400, "invalid_body", None),
    ("POST", "/api/admin/dead/purge", b"{", 400, "invalid_json", None),
    ("POST", f"/api/admin/dead/{UNKNOWN}/retry", None, 404, "dead_letter_not_found", None),
    ("DELETE", f"/api/admin/dead/{UNKNOWN}", None, 404, "dead_letter_not_found", None),
    ("GET", f"/api/admin/sessions/{UNKNOWN}/transcript", None, 404, "session_not_found", None),
    # Ids are checked before any query (chatd/core/ids.py): PostgreSQL refuses a NUL with an error.
    ("POST", "/api/admin/dead/no-such-job/retry", None, 400, "invalid_id", "jobId"),
    ("POST", "/api/admin/dead/bad%20id/retry", None, 400, "invalid_id", "jobId"),
    ("POST", "/api/admin/dead/%00/retry", None, 400, "invalid_id", "jobId"),
    ("DELETE", "/api/admin/dead/no-such-job", None, 400, "invalid_id", "jobId"),
    ("DELETE", f"/api/admin/dead/{UNKNOWN}%00", None, 400, "invalid_id", "jobId"),
    ("DELETE", "/api/admin/dead/" + "x" * 200, None, 400, "invalid_id", "jobId"),
    ("GET", "/api/admin/sessions/nope/transcript", None, 400, "invalid_id", "sessionId"),
    ("GET", "/api/admin/sessions/a%00b/transcript", None, 400, "invalid_id", "sessionId"),
    ("GET", "/api/admin/sessions/%00/transcript?format=text", None, 400, "invalid_id", "sessionId"),
    # The POST-only siblings of /dead/<jobId>: another method is a 405 naming POST.
    ("DELETE", "/api/admin/dead/purge", None, 405, "method_not_allowed", None),
    ("DELETE", "/api/admin/dead/retry-all", None, 405, "method_not_allowed", None),
    ("GET", "/api/admin/dead/retry-all", None, 405, "method_not_allowed", None),
    ("GET", "/api/admin/sessions/x/transcript?format=xml", None, 400, "invalid_query", "format"),
    ("GET", "/api/admin/sessions/x/transcript?download=yes", None, 400, "invalid_query", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "field"),
    BAD_INPUT,
    ids=[f"{m} {p[:60]} {b!r}"[:90] for m, p, b, *_ in BAD_INPUT],
)
async def test_bad_input_is_a_4xx_naming_the_problem_and_changes_nothing(
    admin: Pipeline,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
    field: str | None,
) -> None:
    await dead_letter(admin, "stays dead")
    counts = await table_counts(admin.chatd.services.pool)
    kwargs: dict[str, Any] = {}
    if isinstance(body, bytes):
        kwargs = {"content": body, "headers": {"Content-Type": "application/json"}}
    elif body is not None:
        kwargs = {"json": body}
    async with client(admin) as c:
        response = await c.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    if field is not None:
        assert error["field"] == field
    if code == "invalid_field":
        assert error["field"] == "olderThanSeconds"
    assert response.headers["Cache-Control"] == "no-store"
    assert await table_counts(admin.chatd.services.pool) == counts
    assert await job_count(admin, "dead") == 1


async def test_purge_needs_a_json_content_type(admin: Pipeline) -> None:
    async with client(admin) as c:
        response = await c.post("/api/admin/dead/purge", content=b"olderThanSeconds=1")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


# --- sessions and transcripts ------------------------------------------------------------


async def test_sessions_newest_activity_first_with_counts_previews_and_search(
    admin: Pipeline,
) -> None:
    async with admin.chatd.client() as c:
        ann = await new_session(c, guestEmail="Ann@Shop.example")
        bob = await new_session(c, guestEmail="bob@shop.example")
        quiet = await new_session(c)
        sent = (await send(c, ann, "Where is my order?")).json()["messageId"]
    await admin.wait_job(sent, "completed")
    await admin.wait_messages(ann, 2)
    async with admin.chatd.services.pool.connection() as conn:
        await conn.execute(
            "UPDATE chat_sessions SET expires_at = now() - interval '1 second' WHERE id = %s",
            [quiet.id],
        )
    async with client(admin) as c:
        live = (await c.get("/api/admin/sessions")).json()["sessions"]
        everything = (await c.get("/api/admin/sessions?status=all&limit=10")).json()["sessions"]
        by_email = (await c.get("/api/admin/sessions?q=ann@")).json()["sessions"]
        by_id = (await c.get(f"/api/admin/sessions?q={bob.id[:8]}")).json()["sessions"]
        none = (await c.get("/api/admin/sessions?q=zzz")).json()["sessions"]
        one = (await c.get("/api/admin/sessions?status=all&limit=1")).json()["sessions"]
    assert [s["id"] for s in live] == [ann.id, bob.id]
    assert [s["id"] for s in everything] == [ann.id, quiet.id, bob.id]
    assert [s["id"] for s in one] == [ann.id]
    first = live[0]
    assert first["guestEmail"] == "Ann@Shop.example"
    assert first["messageCount"] == 2
    assert first["lastMessage"]["senderType"] == "bot"
    assert first["lastMessage"]["content"] == "Happy to help."
    assert first["live"] is True
    assert first["connectedHere"] is False
    assert live[1]["lastMessage"] is None
    assert live[1]["messageCount"] == 0
    assert everything[1]["live"] is False
    assert [s["id"] for s in by_email] == [ann.id]
    assert [s["id"] for s in by_id] == [bob.id]
    assert none == []


async def test_a_session_with_a_client_here_shows_connected(admin: Pipeline) -> None:
    async with admin.chatd.client() as c:
        chat = await new_session(c)

    async def long_poll() -> None:
        async with admin.chatd.client() as c:
            await c.get(f"/api/chat/messages/{chat.id}?afterSeq=0&wait=5", headers=chat.auth)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(long_poll)
        async with client(admin) as c:
            with trio.fail_after(5):
                while True:
                    (row,) = (await c.get("/api/admin/sessions")).json()["sessions"]
                    if row["connectedHere"]:
                        break
                    await trio.sleep(0.02)
            overview = (await c.get("/api/admin/overview")).json()
        assert overview["process"]["connections"] == 1
        nursery.cancel_scope.cancel()


async def test_transcript_as_json_text_and_downloads(admin: Pipeline) -> None:
    async with admin.chatd.client() as c:
        chat = await new_session(c, guestEmail="ann@shop.example")
        sent = (await send(c, chat, "Two\nlines <b>and</b> markup")).json()["messageId"]
    await admin.wait_job(sent, "completed")
    await admin.wait_messages(chat, 2)
    path = f"/api/admin/sessions/{chat.id}/transcript"
    async with client(admin) as c:
        as_json = await c.get(path)
        as_text = await c.get(f"{path}?format=text")
        json_file = await c.get(f"{path}?format=json&download=1")
        text_file = await c.get(f"{path}?format=text&download=1")
    assert as_json.status_code == 200
    assert "Content-Disposition" not in as_json.headers
    data = as_json.json()
    assert data["session"]["id"] == chat.id
    assert data["session"]["guestEmail"] == "ann@shop.example"
    assert "tokenHash" not in data["session"]
    assert [m["content"] for m in data["messages"]] == [
        "Two\nlines <b>and</b> markup",
        "Happy to help.",
    ]
    assert [m["seq"] for m in data["messages"]] == [1, 2]
    assert as_text.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert as_text.headers["X-Content-Type-Options"] == "nosniff"
    lines = as_text.text.splitlines()
    assert lines[0].startswith(f"Chat {chat.id} with ann@shop.example")
    assert lines[1].endswith("Shopper: Two lines <b>and</b> markup")
    assert lines[2].endswith("Bot: Happy to help.")
    assert json_file.headers["Content-Disposition"] == (
        f'attachment; filename="chat-{chat.id}.json"'
    )
    assert json_file.json() == data
    assert text_file.headers["Content-Disposition"] == f'attachment; filename="chat-{chat.id}.txt"'
    assert text_file.text == as_text.text
    for response in (as_json, as_text, json_file, text_file):
        assert response.headers["Cache-Control"] == "no-store"


async def test_broadcast_reaches_the_matching_live_sessions_in_real_time(admin: Pipeline) -> None:
    async with admin.chatd.client() as c:
        shop = [await new_session(c, metadata={"shop": "berlin"}) for _ in range(2)]
        other = await new_session(c, metadata={"shop": "paris"})
    async with open_ws(admin.chatd.url) as ws:
        await join(ws, shop[0])
        async with client(admin) as c:
            sent = await c.post(
                "/api/admin/broadcast",
                json={"content": "We close in 10 minutes", "metadata": {"shop": "berlin"}},
            )
            assert sent.status_code == 200, sent.text
            assert sent.json() == {"sessions": 2}
            for bad in ({}, {"content": ""}, {"content": "x", "metadata": "shop"}, {"x": 1}):
                refused = await c.post("/api/admin/broadcast", json=bad)
                assert refused.status_code == 400, bad
        event = await receive_type(ws, "new_message")
    assert event["message"]["senderType"] == "system"
    assert event["message"]["content"] == "We close in 10 minutes"
    assert event["message"]["metadata"] == {"broadcast": True}
    async with admin.chatd.client() as c:
        seen = {
            s.id: (await c.get(f"/api/chat/messages/{s.id}", headers=s.auth)).json()["messages"]
            for s in (*shop, other)
        }
    assert [len(seen[s.id]) for s in shop] == [1, 1]
    assert seen[other.id] == []  # another shop's shoppers are not told
    async with client(admin) as c:
        everyone = await c.post("/api/admin/broadcast", json={"content": "Hello all"})
    assert everyone.json() == {"sessions": 3}


async def test_the_post_only_siblings_of_a_dead_letter_answer_405_with_allow(
    admin: Pipeline,
) -> None:
    # /dead/<jobId> matches /dead/purge and /dead/retry-all too: found by the OpenAPI fuzzer.
    async with client(admin) as c:
        for path in ("/api/admin/dead/purge", "/api/admin/dead/retry-all"):
            response = await c.delete(path)
            assert (response.status_code, response.headers["Allow"]) == (405, "POST"), path
