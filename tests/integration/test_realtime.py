"""The same events over Server-Sent Events and long-poll, and across two chatd processes on one
PostgreSQL (a browser on B sees what A stores: the message, the statuses, the bot's reply)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from chatd.db.pool import PoolConfig, open_pool
from chatd.settings import Settings
from tests.chat import new_session, send
from tests.conftest import RunningChatd, make_settings, start_chatd
from tests.integration.test_delivery import SECRET, open_pipeline
from tests.integration.test_ws import insert_bot_messages
from tests.sink import Callback
from tests.sse import open_sse
from tests.ws import join, open_ws, receive


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        chat={"rate_limit_max": 10_000},
        websocket={"heartbeat_interval_seconds": 0.5},
    )


async def test_sse_streams_replay_then_live_and_resumes_with_last_event_id(
    chatd: RunningChatd,
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        await send(client, session, "one")
        await send(client, session, "two")
        path = f"/api/chat/events/{session.id}"
        async with open_sse(chatd.url, path, session.auth) as events:
            seen = [await events.next(), await events.next()]
            await send(client, session, "three")
            while (event := await events.next()) is not None and event.type != "new_message":
                pass
            seen.append(event)
            assert "connected" in events.comments
        assert [(e.id, e.type, e.data["message"]["seq"]) for e in seen if e is not None] == [
            ("1", "new_message", 1),
            ("2", "new_message", 2),
            ("3", "new_message", 3),
        ]
        async with open_sse(chatd.url, path, {**session.auth, "Last-Event-ID": "2"}) as events:
            resumed = await events.next()
        assert resumed is not None
        assert (resumed.id, resumed.data["message"]["content"]) == ("3", "three")


async def test_sse_sends_heartbeats_when_idle(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
    async with open_sse(chatd.url, f"/api/chat/events/{session.id}", session.auth) as events:
        with pytest.raises(trio.TooSlowError):
            await events.next(seconds=1.2)
        assert events.comments.count("heartbeat") >= 1


async def test_sse_refuses_bad_requests_with_json_errors(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        other = await new_session(client)
        url = f"/api/chat/events/{session.id}"
        cases = [
            ({}, 401, "missing_token"),
            (other.auth, 401, "invalid_session"),
            ({**session.auth, "Last-Event-ID": "x"}, 400, "invalid_query"),
            ({**session.auth, "Last-Event-ID": "-1"}, 400, "invalid_query"),
        ]
        for headers, status, code in cases:
            response = await client.get(url, headers=headers)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code)
        response = await client.get(url + "?since=1", headers=session.auth)
        assert response.json()["error"]["code"] == "unknown_field"


async def test_sse_stream_ends_on_shutdown(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
    async with open_sse(chatd.url, f"/api/chat/events/{session.id}", session.auth) as events:
        chatd.stop.set()
        assert await events.next() is None


async def test_long_poll_waits_for_the_next_message(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        await send(client, session, "one")
        url = f"/api/chat/messages/{session.id}"
        # Something is there already: at once.
        ready = await client.get(url, params={"afterSeq": 0, "wait": 5}, headers=session.auth)
        assert [m["seq"] for m in ready.json()["messages"]] == [1]

        async def later() -> None:
            await trio.sleep(0.3)
            await send(client, session, "two")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(later)
            started = trio.current_time()
            held = await client.get(url, params={"afterSeq": 1, "wait": 5}, headers=session.auth)
            waited = trio.current_time() - started
        assert [m["content"] for m in held.json()["messages"]] == ["two"]
        assert 0.25 < waited < 3

        started = trio.current_time()
        empty = await client.get(url, params={"afterSeq": 2, "wait": 1}, headers=session.auth)
        assert empty.json()["messages"] == []
        assert 0.9 < trio.current_time() - started < 3
        bad = await client.get(url, params={"wait": 5}, headers=session.auth)
        assert (bad.status_code, bad.json()["error"]["field"]) == (400, "wait")


async def test_a_long_poll_answers_the_first_messages_of_a_burst_in_order(
    chatd: RunningChatd, database_url: str
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        await send(client, session, "one")

        async def burst() -> None:
            await trio.sleep(0.3)  # the poll is waiting by then
            await trio.to_thread.run_sync(insert_bot_messages, database_url, session, 3)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(burst)
            held = await client.get(
                f"/api/chat/messages/{session.id}",
                params={"afterSeq": 1, "limit": 2, "wait": 5},
                headers=session.auth,
            )
    seqs = [m["seq"] for m in held.json()["messages"]]
    # Seqs 2, 3 and 4 commit together: at most `limit` of them, from the first, without a gap.
    assert seqs
    assert seqs == [2, 3][: len(seqs)]
    assert held.json()["messages"][0]["content"] == "bulk 1"


async def test_sse_long_poll_and_websocket_carry_the_same_sequence(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        for n in range(5):
            await send(client, session, f"m{n}")
        sse: list[str] = []
        async with open_sse(chatd.url, f"/api/chat/events/{session.id}", session.auth) as events:
            while len(sse) < 5:
                event = await events.next()
                assert event is not None
                if event.type == "new_message":
                    sse.append(event.data["message"]["id"])
        polled = await client.get(
            f"/api/chat/messages/{session.id}",
            params={"afterSeq": 0, "wait": 1},
            headers=session.auth,
        )
        poll = [m["id"] for m in polled.json()["messages"]]
    ws_ids: list[str] = []
    async with open_ws(chatd.url) as ws:
        await join(ws, session)
        while len(ws_ids) < 5:
            event = await receive(ws)
            if event["type"] == "new_message":
                ws_ids.append(event["message"]["id"])
    assert sse == poll == ws_ids


async def test_a_browser_on_b_sees_what_a_stores_in_order(
    nursery: trio.Nursery, database_url: str
) -> None:
    a = await open_pipeline(nursery, database_url)
    async with open_pool(PoolConfig(database_url)) as pool:
        b = await start_chatd(nursery, make_settings(database_url), pool)
        listener = b.services.state.listener
        assert listener is not None
        with trio.fail_after(10):
            while not listener.connected:
                await trio.sleep(0.02)
        async with a.chatd.client() as client_a, b.client() as client_b:
            session = await new_session(client_b)
            a.sink.behave(Callback("Here is your answer", a.chatd.url, SECRET))
            async with open_ws(b.url) as ws:
                await join(ws, session)
                assert (await send(client_a, session, "question")).status_code == 200
                events: list[dict[str, Any]] = []
                with trio.fail_after(10):
                    while not any(
                        e["type"] == "new_message" and e["message"]["senderType"] == "bot"
                        for e in events
                    ) or not any(
                        e["type"] == "message_status" and e["status"] == "delivered" for e in events
                    ):
                        events.append(await receive(ws))
        kinds = [e["type"] for e in events]
        messages = [e["message"] for e in events if e["type"] == "new_message"]
        assert [(m["seq"], m["senderType"]) for m in messages] == [(1, "user"), (2, "bot")]
        assert messages[1]["content"] == "Here is your answer"
        assert {"type": "bot_typing", "sessionId": session.id, "isTyping": True} in events
        statuses = [e["status"] for e in events if e["type"] == "message_status"]
        assert statuses[-1] == "delivered"
        assert kinds.index("new_message") < kinds.index("bot_typing")
        b.stop.set()
