"""Delivery to n8n against a real local HTTP sink: replies both ways, retries, dead letters."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from chatd.core.signing import standard_signature
from chatd.db.listen import Listener
from chatd.db.pool import PoolConfig, open_pool
from chatd.db.queue import EVENTS_CHANNEL
from tests.chat import Session, new_session, send, table_counts
from tests.conftest import RunningChatd, make_settings, start_chatd
from tests.sink import Ack, Callback, Drop, Hold, Html, Huge, Output, Reply, Sink, Status, sign

SECRET = "n8n-shared-secret-for-the-tests-0123456789"


@dataclass
class Pipeline:
    chatd: RunningChatd
    sink: Sink

    async def messages(self, session: Session) -> list[dict[str, Any]]:
        async with self.chatd.client() as client:
            response = await client.get(f"/api/chat/messages/{session.id}", headers=session.auth)
        return list(response.json()["messages"])

    async def wait_messages(
        self, session: Session, count: int, timeout: float = 10
    ) -> list[dict[str, Any]]:
        with trio.fail_after(timeout):
            while len(messages := await self.messages(session)) < count:
                await trio.sleep(0.02)
        return messages

    async def job(self, message_id: str) -> dict[str, Any]:
        async with self.chatd.services.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT status, attempts, last_status, last_error FROM chat_webhook_queue"
                    " WHERE message_id = %s",
                    [message_id],
                )
            ).fetchone()
        assert row is not None
        return row

    async def wait_job(self, message_id: str, status: str, timeout: float = 10) -> dict[str, Any]:
        with trio.fail_after(timeout):
            while (job := await self.job(message_id))["status"] != status:
                await trio.sleep(0.02)
        return job


async def open_pipeline(
    nursery: trio.Nursery, database_url: str, **sections: dict[str, object]
) -> Pipeline:
    sink = await Sink.start(nursery)
    base = {
        "queue": {
            "dispatch": True,
            "retry_base_delay_seconds": 0.05,
            "retry_max_delay_seconds": 0.2,
            "poll_interval_seconds": 0.2,
        },
        "n8n": {"webhook_url": sink.webhook_url, "webhook_secret": SECRET, "timeout_seconds": 2},
    }
    for section, keys in sections.items():
        base[section] = {**base.get(section, {}), **keys}
    settings = make_settings(database_url, **base)
    pool = await nursery.start(_pool, database_url)
    chatd = await start_chatd(nursery, settings, pool)
    return Pipeline(chatd, sink)


async def _pool(url: str, *, task_status: trio.TaskStatus[Any]) -> None:
    async with open_pool(PoolConfig(url, max_size=20)) as pool:
        task_status.started(pool)
        await trio.sleep_forever()


@pytest.fixture
async def pipeline(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(nursery, database_url)
    yield pipe
    pipe.chatd.stop.set()


async def test_sync_reply_is_stored_after_the_users_message(pipeline: Pipeline) -> None:
    pipeline.sink.behave(Reply("Your order ships today.", quick_replies=["Thanks", "Track it"]))
    async with pipeline.chatd.client() as client:
        session = await new_session(client, guestEmail="ann@shop.example")
        sent = (await send(client, session, "Where is my order?")).json()
    user, bot = await pipeline.wait_messages(session, 2)
    assert (user["id"], user["status"]) == (sent["messageId"], "delivered")
    assert (bot["senderType"], bot["content"], bot["seq"]) == ("bot", "Your order ships today.", 2)
    assert bot["messageType"] == "text"  # as declared by n8n
    assert bot["metadata"]["quickReplies"] == ["Thanks", "Track it"]
    (request,) = pipeline.sink.requests
    body = request.json
    assert body["sessionId"] == session.id
    assert body["messageId"] == sent["messageId"]
    assert body["message"]["content"] == "Where is my order?"
    assert body["seq"] == 1
    assert body["guestEmail"] == "ann@shop.example"
    assert body["userContext"] == {"isAuthenticated": False}
    assert body["callbackUrl"] == f"{pipeline.chatd.url}/api/chat/webhook"
    headers = request.headers
    assert headers["x-webhook-secret"] == SECRET
    assert headers["webhook-id"] == body["deliveryId"]
    expected = standard_signature(
        SECRET, headers["webhook-id"], int(headers["webhook-timestamp"]), request.body
    )
    assert expected in headers["webhook-signature"].split(" ")
    assert (await pipeline.job(sent["messageId"]))["status"] == "completed"


@pytest.mark.parametrize("scheme", ["hex", "standard"])
async def test_ack_then_signed_callback_shows_the_reply_once(
    pipeline: Pipeline, scheme: str
) -> None:
    async with pipeline.chatd.client() as client:
        session = await new_session(client)
        pipeline.sink.behave(
            Callback(
                "Found it!",
                pipeline.chatd.url,
                SECRET,
                scheme=scheme,  # type: ignore[arg-type]
                times=2,
                callback_delay=0.2,
            )
        )
        sent = (await send(client, session, "where is it?")).json()
        job = await pipeline.wait_job(sent["messageId"], "completed")
        assert job["last_status"] == 202
        first = await pipeline.messages(session)
        assert [m["status"] for m in first] == ["sent"]  # taken by n8n, reply to come
        results = await pipeline.sink.wait_for_callbacks(2)
    assert [status for status, _ in results] == [200, 200]
    user, bot = await pipeline.wait_messages(session, 2)
    await trio.sleep(0.2)
    assert len(await pipeline.messages(session)) == 2  # the repeated callback stored nothing
    assert (user["status"], bot["content"], bot["seq"]) == ("delivered", "Found it!", 2)


async def test_chat_trigger_mode_speaks_n8ns_chat_format(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(nursery, database_url, n8n={"mode": "chat_trigger"})
    pipe.sink.behave(Output("Hi from the agent"))
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        await send(client, session, "hello agent")
    _user, bot = await pipe.wait_messages(session, 2)
    assert bot["content"] == "Hi from the agent"
    body = pipe.sink.requests[0].json
    assert (body["action"], body["sessionId"], body["chatInput"]) == (
        "sendMessage",
        session.id,
        "hello agent",
    )
    pipe.chatd.stop.set()


@pytest.mark.parametrize(
    "failure",
    [
        Status(500),
        Status(502),
        Status(503, headers={"Retry-After": "0"}),
        Status(408),
        Status(429),
        Status(404),
        Drop(),
        Hold(delay=0),
    ],
    ids=["500", "502", "503", "408", "429", "404-inactive-workflow", "dropped", "timeout"],
)
async def test_retryable_failures_are_retried_then_delivered(
    nursery: trio.Nursery, database_url: str, failure: Any
) -> None:
    pipe = await open_pipeline(nursery, database_url, n8n={"timeout_seconds": 0.5})
    pipe.sink.queue(failure)
    pipe.sink.behave(Reply("second time lucky"))
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        sent = (await send(client, session, "hi")).json()
    _user, bot = await pipe.wait_messages(session, 2)
    assert bot["content"] == "second time lucky"
    job = await pipe.job(sent["messageId"])
    # A connection dropped before any answer is retried at once as the same attempt (n8n closes
    # idle keep-alive connections; that must not burn an attempt); the rest used one more.
    assert (job["status"], job["attempts"]) == ("completed", 1 if isinstance(failure, Drop) else 2)
    assert len(pipe.sink.requests) == 2
    ids = {r.headers["webhook-id"] for r in pipe.sink.requests}
    assert len(ids) == 1  # the same delivery id on every attempt: n8n can deduplicate
    pipe.sink.release()
    pipe.chatd.stop.set()


async def test_retry_after_is_honoured(nursery: trio.Nursery, database_url: str) -> None:
    pipe = await open_pipeline(nursery, database_url)
    pipe.sink.queue(Status(503, headers={"Retry-After": "1"}))
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        await send(client, session, "hi")
    first, second = await pipe.sink.wait_for(2, timeout=10)
    assert second.perf - first.perf >= 0.95  # not the 0.05 s backoff
    pipe.chatd.stop.set()


@pytest.mark.parametrize("status", [400, 401, 403, 410, 422])
async def test_permanent_failures_dead_letter_at_once_with_fallback(
    nursery: trio.Nursery, database_url: str, status: int
) -> None:
    pipe = await open_pipeline(nursery, database_url, n8n={"fallback_reply": "Sorry, try later."})
    pipe.sink.queue(Status(status, b'{"message":"Authorization data is wrong!"}'))
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        sent = (await send(client, session, "first")).json()
        user, fallback = await pipe.wait_messages(session, 2)
        assert (user["status"], fallback["content"]) == ("failed", "Sorry, try later.")
        assert fallback["metadata"] == {"fallback": True}
        job = await pipe.job(sent["messageId"])
        assert (job["status"], job["attempts"], job["last_status"]) == ("dead", 1, status)
        # the lane unblocks: the next message goes through
        await send(client, session, "second")
        messages = await pipe.wait_messages(session, 4)
    assert [m["content"] for m in messages[2:]] == ["second", "ok"]
    pipe.chatd.stop.set()


async def test_attempts_exhausted_dead_letter_with_fallback(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(nursery, database_url, queue={"max_attempts": 3})
    pipe.sink.behave(Status(500))
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        sent = (await send(client, session, "hello?")).json()
    job = await pipe.wait_job(sent["messageId"], "dead")
    assert job["attempts"] == 3
    assert "gave up after 3 attempts" in job["last_error"]
    assert len(pipe.sink.requests) == 3
    user, fallback = await pipe.wait_messages(session, 2)
    assert user["status"] == "failed"
    assert fallback["senderType"] == "bot"
    pipe.chatd.stop.set()


@pytest.mark.parametrize(
    "answer",
    [
        Html(),
        Huge(),
        Huge(declare_length=False),
        Ack(200, b'{"message":"Workflow was started"}'),
        Ack(204),
        Status(200, b'{"response": {"content": ""}}'),
    ],
    ids=["html", "10MB", "10MB-chunked", "workflow-started", "204", "empty-content"],
)
async def test_a_2xx_without_a_usable_reply_completes_the_job(
    pipeline: Pipeline, answer: Any
) -> None:
    pipeline.sink.behave(answer)
    async with pipeline.chatd.client() as client:
        session = await new_session(client)
        sent = (await send(client, session, "hi")).json()
    job = await pipeline.wait_job(sent["messageId"], "completed")
    assert job["attempts"] == 1
    (user,) = await pipeline.messages(session)
    assert user["status"] == "sent"  # n8n took it; nothing unsafe stored
    assert len(pipeline.sink.requests) == 1


async def test_refused_connections_are_retried_until_n8n_is_back(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(nursery, database_url, queue={"max_attempts": 100})
    pipe.sink.refuse_connections()
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        sent = (await send(client, session, "anyone?")).json()
        with trio.fail_after(10):
            while (await pipe.job(sent["messageId"]))["attempts"] < 3:
                await trio.sleep(0.05)
        pipe.sink.accept_connections()
        _user, bot = await pipe.wait_messages(session, 2)
    assert bot["content"] == "ok"
    pipe.chatd.stop.set()


async def test_a_sessions_next_message_waits_for_the_previous_one(pipeline: Pipeline) -> None:
    pipeline.sink.queue(Hold())
    async with pipeline.chatd.client() as client:
        session, other = await new_session(client), await new_session(client)
        await send(client, session, "one")
        await pipeline.sink.wait_for(1)
        await send(client, session, "two")
        await send(client, other, "elsewhere")
        await pipeline.sink.wait_for(2)
        await trio.sleep(0.3)
        # "two" is held back behind "one"; the other session was not
        assert [r.json["message"]["content"] for r in pipeline.sink.requests] == [
            "one",
            "elsewhere",
        ]
        pipeline.sink.release()
        messages = await pipeline.wait_messages(session, 4)
    # seq is commit order: "two" was taken before the reply to "one" came back
    assert [m["content"] for m in messages] == ["one", "two", "released", "ok"]
    assert [r.json["message"]["content"] for r in pipeline.sink.requests] == [
        "one",
        "elsewhere",
        "two",
    ]


async def test_a_late_finisher_whose_lease_was_rescued_changes_nothing(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(
        nursery, database_url, queue={"lease_seconds": 0.5}, n8n={"timeout_seconds": 5}
    )
    pipe.sink.queue(Hold(then=Reply("late reply")))
    pipe.sink.behave(Reply("fresh reply"))
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        sent = (await send(client, session, "hi")).json()
        await pipe.sink.wait_for(2, timeout=10)  # the lease expired: the job was claimed again
        messages = await pipe.wait_messages(session, 2)
        pipe.sink.release()  # the first worker now gets its (late) answer
        dispatcher = pipe.chatd.services.state.dispatcher
        assert dispatcher is not None
        with trio.fail_after(5):
            while dispatcher.statistics().lost_leases < 1:
                await trio.sleep(0.02)
    assert [m["content"] for m in await pipe.messages(session)] == ["hi", "fresh reply"]
    assert messages[1]["content"] == "fresh reply"
    assert (await pipe.job(sent["messageId"]))["attempts"] == 2
    pipe.chatd.stop.set()


async def test_shutdown_releases_calls_in_flight_without_using_an_attempt(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(
        nursery, database_url, server={"shutdown_grace_seconds": 0.3}, n8n={"timeout_seconds": 5}
    )
    pipe.sink.behave(Hold())
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        sent = (await send(client, session, "hi")).json()
    await pipe.sink.wait_for(1)
    pipe.chatd.stop.set()
    with trio.fail_after(5):
        while (job := await pipe.job(sent["messageId"]))["status"] != "pending":
            await trio.sleep(0.02)
    assert job["attempts"] == 0
    pipe.sink.release()


# -- callbacks ---------------------------------------------------------------------------------


async def _post_callback(pipe: Pipeline, body: bytes, headers: dict[str, str]) -> Any:
    async with pipe.chatd.client() as client:
        return await client.post(
            "/api/chat/webhook",
            content=body,
            headers={"Content-Type": "application/json", **headers},
        )


async def _pending_message(pipe: Pipeline) -> tuple[Session, str]:
    pipe.sink.behave(Ack(202))
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        sent = (await send(client, session, "question")).json()
    await pipe.wait_job(sent["messageId"], "completed")
    return session, sent["messageId"]


async def test_callbacks_with_bad_signatures_are_refused_and_change_nothing(
    pipeline: Pipeline,
) -> None:
    session, message_id = await _pending_message(pipeline)
    body = (
        f'{{"sessionId": "{session.id}", "replyTo": "{message_id}",'
        f' "response": {{"content": "forged"}}}}'
    ).encode()
    good_hex = sign(body, SECRET, "hex")
    old = int(time.time()) - 600
    stale = {
        "webhook-id": "msg-1",
        "webhook-timestamp": str(old),
        "webhook-signature": standard_signature(SECRET, "msg-1", old, body),
    }
    cases = {
        "missing": {},
        "wrong secret": sign(body, "another-secret-entirely-0123456789abcdef", "hex"),
        "malformed hex": {"X-Webhook-Signature": "zz-not-hex"},
        "malformed standard": {
            "webhook-id": "x",
            "webhook-timestamp": "now",
            "webhook-signature": "v1,%%%",
        },
        "stale": stale,
        "tampered body": good_hex,
    }
    for name, headers in cases.items():
        payload = body.replace(b"forged", b"tampered") if name == "tampered body" else body
        response = await _post_callback(pipeline, payload, headers)
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] == "invalid_signature", name
    assert len(await pipeline.messages(session)) == 1
    counted = pipeline.chatd.services.callbacks.statistics().signature_failures
    assert sum(counted.values()) == len(cases)
    assert counted["stale"] == 1


async def test_a_callback_may_only_answer_in_its_own_session(pipeline: Pipeline) -> None:
    _session, message_id = await _pending_message(pipeline)
    async with pipeline.chatd.client() as client:
        other = await new_session(client)
    body = (
        f'{{"sessionId": "{other.id}", "replyTo": "{message_id}",'
        f' "response": {{"content": "cross-session"}}}}'
    ).encode()
    response = await _post_callback(pipeline, body, sign(body, SECRET, "hex"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "reply_to_not_found"
    unknown = b'{"sessionId": "0b6e2c1f-9a3d-4e5b-8c7f-1d2e3f4a5b6c", "response": "hi"}'
    response = await _post_callback(pipeline, unknown, sign(unknown, SECRET, "hex"))
    assert response.status_code == 404
    assert await pipeline.messages(other) == []


@pytest.mark.parametrize(
    ("ids", "code", "field"),
    [
        ('"sessionId": "no-such-session"', "invalid_callback", "sessionId"),
        ('"sessionId": "{session}\\u0000"', "invalid_characters", "sessionId"),
        ('"sessionId": "{session}", "replyTo": "m-1"', "invalid_callback", "replyTo"),
        ('"sessionId": "{session}", "replyTo": "{session}x"', "invalid_callback", "replyTo"),
    ],
)
async def test_a_callback_with_a_malformed_id_is_a_400_naming_it(
    pipeline: Pipeline, ids: str, code: str, field: str
) -> None:
    session, _message_id = await _pending_message(pipeline)
    body = ("{" + ids.format(session=session.id) + ', "response": "hi"}').encode()
    before = await table_counts(pipeline.chatd.services.pool)
    response = await _post_callback(pipeline, body, sign(body, SECRET, "hex"))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert await table_counts(pipeline.chatd.services.pool) == before


async def test_a_callback_may_name_its_ids_in_uppercase(pipeline: Pipeline) -> None:
    session, message_id = await _pending_message(pipeline)
    body = (
        f'{{"sessionId": "{session.id.upper()}", "replyTo": "{message_id.upper()}",'
        ' "response": "SHOUTED IDS"}'
    ).encode()
    response = await _post_callback(pipeline, body, sign(body, SECRET, "hex"))
    assert response.status_code == 200, response.text
    assert [m["content"] for m in await pipeline.messages(session)] == ["question", "SHOUTED IDS"]


async def test_racing_identical_callbacks_store_one_reply(pipeline: Pipeline) -> None:
    session, message_id = await _pending_message(pipeline)
    body = (
        f'{{"sessionId": "{session.id}", "replyTo": "{message_id}",'
        f' "response": {{"content": "only once", "type": "text"}}}}'
    ).encode()
    statuses: list[int] = []

    async def post() -> None:
        statuses.append(
            (await _post_callback(pipeline, body, sign(body, SECRET, "standard"))).status_code
        )

    async with trio.open_nursery() as racers:
        for _ in range(8):
            racers.start_soon(post)
    assert statuses == [200] * 8
    messages = await pipeline.messages(session)
    assert [m["content"] for m in messages] == ["question", "only once"]
    assert [m["seq"] for m in messages] == [1, 2]
    # the guide's legacy shape (response as a string) is accepted too
    legacy = f'{{"sessionId": "{session.id}", "response": "plain text", "responseType": "text"}}'.encode()
    assert (await _post_callback(pipeline, legacy, sign(legacy, SECRET, "hex"))).status_code == 200
    assert (await pipeline.messages(session))[-1]["content"] == "plain text"


async def test_health_shows_n8n_failing_and_dead_letters(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(nursery, database_url, queue={"max_attempts": 1})
    pipe.sink.behave(Status(403, b'{"message":"Authorization data is wrong!"}'))
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        sent = (await send(client, session, "hi")).json()
        await pipe.wait_job(sent["messageId"], "dead")
        health = (await client.get("/api/chat/health")).json()
    assert health["status"] == "degraded"
    assert health["checks"]["webhook"] == "unhealthy"
    assert health["metrics"]["deadLetters"] == 1
    assert health["metrics"]["webhookSuccessRate"] == 0
    assert health["lastWebhookError"] == "HTTP 403"
    pipe.chatd.stop.set()


async def test_events_follow_the_queue_bot_typing_included(
    nursery: trio.Nursery, database_url: str
) -> None:
    events: list[dict[str, Any]] = []
    listener = Listener(
        database_url, [EVENTS_CHANNEL], lambda _c, payload: events.append(json.loads(payload))
    )
    await nursery.start(listener.run)
    pipe = await open_pipeline(nursery, database_url)
    pipe.sink.queue(Status(503, headers={"Retry-After": "0"}), Hold(then=Reply("here you go")))
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        sent = (await send(client, session, "typing?")).json()
        await pipe.sink.wait_for(2)
        with trio.fail_after(5):
            while [e["isTyping"] for e in events if e["type"] == "bot_typing"] != [
                True,
                False,
                True,
            ]:
                await trio.sleep(0.02)
        pipe.sink.release()
        await pipe.wait_messages(session, 2)
    with trio.fail_after(5):
        while len(events) < 6:
            await trio.sleep(0.02)
    await trio.sleep(0.2)  # and nothing after them
    mine = [
        {k: v for k, v in e.items() if k != "sessionId"}
        for e in events
        if e["sessionId"] == session.id
    ]
    bot_id = (await pipe.messages(session))[1]["id"]
    assert mine == [
        {"type": "new_message", "messageId": sent["messageId"], "seq": 1},
        {"type": "bot_typing", "isTyping": True},  # claimed
        {"type": "bot_typing", "isTyping": False},  # 503: waiting to retry
        {"type": "bot_typing", "isTyping": True},  # claimed again
        {"type": "new_message", "messageId": bot_id, "seq": 2},  # the reply ends the typing
        {"type": "message_status", "messageId": sent["messageId"], "seq": 1, "status": "delivered"},
    ]
    pipe.chatd.stop.set()
