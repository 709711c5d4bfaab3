"""WebSocket /api/chat/ws against a real chatd, PostgreSQL and trio-websocket clients:
replay and resume, tabs, send_message, typing, heartbeats, slow consumers, shutdown."""

from __future__ import annotations

import json

import psycopg
import pytest
import trio
from trio_websocket import ConnectionClosed

from chatd.settings import Settings
from tests.chat import Session, new_session
from tests.chat import send as http_send
from tests.conftest import RunningChatd, make_settings, start_chatd
from tests.ws import (
    close_code,
    join,
    messages_until,
    open_ws,
    raw_joined,
    receive,
    receive_type,
    send,
)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        chat={"rate_limit_max": 10_000},
        websocket={"heartbeat_interval_seconds": 0.5, "messages_per_second": 1000},
    )


async def make_session(chatd: RunningChatd) -> Session:
    async with chatd.client() as client:
        return await new_session(client)


def insert_bot_messages(database_url: str, session: Session, count: int, pad: int = 0) -> None:
    """Bot messages stored by "another process": a plain SQL transaction, seq by seq; each
    content padded with `pad` more characters."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            """
            WITH s AS (
                UPDATE chat_sessions SET last_seq = last_seq + %(n)s WHERE id = %(sid)s
                RETURNING last_seq - %(n)s AS base)
            INSERT INTO chat_messages (id, session_id, sender_type, content, message_type,
                                       status, seq)
            SELECT gen_random_uuid()::text, %(sid)s, 'bot', 'bulk ' || i || repeat('x', %(pad)s),
                   'text', 'delivered', s.base + i
              FROM s, generate_series(1, %(n)s) AS i
            """,
            {"sid": session.id, "n": count, "pad": pad},
        )


async def test_join_replays_then_streams_live_messages(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        for n in range(3):
            assert (await http_send(client, session, f"before {n}")).status_code == 200
        async with open_ws(chatd.url) as ws:
            joined = await join(ws, session)
            assert joined["lastSeq"] == 3
            assert joined["heartbeatIntervalSeconds"] == 0.5
            assert await messages_until(ws, 3) == [1, 2, 3]
            assert (await http_send(client, session, "live")).status_code == 200
            event = await receive_type(ws, "new_message")
            assert event["message"]["seq"] == 4
            assert event["message"]["content"] == "live"
            assert event["message"]["senderType"] == "user"
            assert event["sessionId"] == session.id


async def test_join_with_an_uppercase_session_id_joins_that_session(chatd: RunningChatd) -> None:
    # UUIDs are case-insensitive (chatd/core/ids.py): the join names the stored, lowercase id.
    async with chatd.client() as client:
        session = await new_session(client)
        assert (await http_send(client, session, "hello")).status_code == 200
    async with open_ws(chatd.url) as ws:
        joined = await join(ws, Session(session.id.upper(), session.token))
        assert (joined["sessionId"], joined["lastSeq"]) == (session.id, 1)
        await send(ws, {"type": "typing", "isTyping": True, "sessionId": session.id.upper()})
        await send(ws, {"type": "ping"})
        seen = []
        while (event := await receive(ws))["type"] != "pong":
            seen.append(event["type"])
        assert "error" not in seen  # the typing frame was not refused


async def test_send_message_is_acked_and_echoed(chatd: RunningChatd) -> None:
    session = await make_session(chatd)
    async with open_ws(chatd.url) as ws:
        await join(ws, session)
        await send(ws, {"type": "send_message", "content": "hi", "clientMessageId": "c-1"})
        events = [await receive(ws), await receive(ws)]
        ack = next(e for e in events if e["type"] == "message_ack")
        new = next(e for e in events if e["type"] == "new_message")
        assert ack == {
            "type": "message_ack",
            "clientMessageId": "c-1",
            "messageId": new["message"]["id"],
            "seq": 1,
            "status": "pending",
        }
        # The same clientMessageId again: the same message, not a second one.
        await send(ws, {"type": "send_message", "content": "hi", "clientMessageId": "c-1"})
        again = await receive_type(ws, "message_ack")
        assert again["messageId"] == ack["messageId"]
        # Other content under that id: refused, and the connection stays.
        await send(ws, {"type": "send_message", "content": "other", "clientMessageId": "c-1"})
        error = await receive_type(ws, "error")
        assert (error["code"], error["clientMessageId"]) == ("client_message_id_conflict", "c-1")
        await send(ws, {"type": "ping"})
        assert (await receive_type(ws, "pong"))["ts"] > 0
    async with chatd.client() as client:
        stored = (await client.get(f"/api/chat/messages/{session.id}", headers=session.auth)).json()
    assert [m["content"] for m in stored["messages"]] == ["hi"]


async def test_send_message_obeys_the_session_rate_limit(database_url: str) -> None:
    settings = make_settings(database_url, chat={"rate_limit_max": 2})
    async with trio.open_nursery() as nursery:
        from chatd.db.pool import PoolConfig, open_pool

        async with open_pool(PoolConfig(database_url)) as pool:
            chatd = await start_chatd(nursery, settings, pool)
            session = await make_session(chatd)
            async with open_ws(chatd.url) as ws:
                await join(ws, session)
                for n in range(3):
                    await send(
                        ws, {"type": "send_message", "content": "x", "clientMessageId": f"m{n}"}
                    )
                acks = [await receive_type(ws, "message_ack") for _ in range(2)]
                error = await receive_type(ws, "error")
            assert [a["seq"] for a in acks] == [1, 2]
            assert error["code"] == "rate_limited"
            assert error["clientMessageId"] == "m2"
            assert error["retryAfter"] > 0
            chatd.stop.set()


async def test_resume_after_disconnect_gets_what_was_missed(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        async with open_ws(chatd.url) as ws:
            await join(ws, session)
            await http_send(client, session, "one")
            assert await messages_until(ws, 1) == [1]
        for n in range(150):  # more than one replay page
            assert (await http_send(client, session, f"meanwhile {n}")).status_code == 200
        async with open_ws(chatd.url) as ws:
            await join(ws, session, last_seq=1)
            assert await messages_until(ws, 151, seconds=10) == list(range(2, 152))


async def test_two_tabs_see_every_event_and_each_other_typing(chatd: RunningChatd) -> None:
    session = await make_session(chatd)
    async with open_ws(chatd.url) as one, open_ws(chatd.url) as two:
        await join(one, session)
        await join(two, session)
        await send(one, {"type": "send_message", "content": "from one", "clientMessageId": "a"})
        await send(two, {"type": "send_message", "content": "from two", "clientMessageId": "b"})
        assert await messages_until(one, 2) == [1, 2]
        assert await messages_until(two, 2) == [1, 2]

        await send(one, {"type": "typing", "isTyping": True})
        typing = await receive_type(two, "typing")
        assert typing == {"type": "typing", "sessionId": session.id, "isTyping": True}
        # Throttled: the same value again at once is not relayed; a change is.
        await send(one, {"type": "typing", "isTyping": True})
        await send(one, {"type": "typing", "sessionId": session.id, "isTyping": False})
        assert (await receive_type(two, "typing"))["isTyping"] is False
        # The sender never hears its own typing.
        await send(one, {"type": "ping"})
        while (event := await receive(one))["type"] != "pong":
            assert event["type"] != "typing"


async def test_a_message_stored_elsewhere_arrives_through_the_notification(
    chatd: RunningChatd, database_url: str
) -> None:
    session = await make_session(chatd)
    async with open_ws(chatd.url) as ws:
        await join(ws, session)
        await trio.to_thread.run_sync(insert_bot_messages, database_url, session, 3)
        assert await messages_until(ws, 3) == [1, 2, 3]


async def test_a_bad_notification_does_not_stop_the_events(
    chatd: RunningChatd, database_url: str
) -> None:
    session = await make_session(chatd)

    def notify_garbage() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for payload in [
                "garbage",
                json.dumps({"type": "new_message", "sessionId": session.id}),
            ]:
                conn.execute("SELECT pg_notify('chatd_events', %s)", (payload,))

    async with open_ws(chatd.url) as ws:
        await join(ws, session)
        await trio.to_thread.run_sync(notify_garbage)
        await trio.to_thread.run_sync(insert_bot_messages, database_url, session, 1)
        assert await messages_until(ws, 1) == [1]


async def test_server_heartbeats_and_a_silent_client_is_closed(chatd: RunningChatd) -> None:
    session = await make_session(chatd)
    async with open_ws(chatd.url) as ws:
        await join(ws, session)
        started = trio.current_time()
        with trio.fail_after(3):
            beat = json.loads(await ws.get_message())
        assert beat["type"] == "heartbeat"
        assert await close_code(ws) == 4009  # silent for two 0.5 s intervals
        assert trio.current_time() - started < 2.5


async def test_a_client_that_pings_stays(chatd: RunningChatd) -> None:
    session = await make_session(chatd)
    async with open_ws(chatd.url) as ws:
        await join(ws, session)
        for _ in range(6):
            await send(ws, {"type": "ping"})
            await trio.sleep(0.3)
        await send(ws, {"type": "ping"})
        assert (await receive_type(ws, "pong"))["type"] == "pong"


async def test_pongs_stand_in_for_heartbeats(chatd: RunningChatd) -> None:
    """Any frame the server sends shows the connection is alive: a client pinging well within
    the 0.5 s interval hears pongs, not heartbeats besides (one every 0.5 s without them)."""
    session = await make_session(chatd)
    frames: list[str] = []
    async with open_ws(chatd.url) as ws:
        await join(ws, session)
        end = trio.current_time() + 2.0
        while trio.current_time() < end:
            await send(ws, {"type": "ping"})
            with trio.move_on_after(0.15):
                while True:
                    frames.append(json.loads(await ws.get_message())["type"])
    assert frames.count("pong") >= 5
    assert frames.count("heartbeat") <= 1  # a stalled ping under load, at most


async def test_slow_consumer_is_closed_and_resumes_without_loss(
    database_url: str, chatd: RunningChatd
) -> None:
    settings = make_settings(database_url, websocket={"send_buffer": 8})
    async with trio.open_nursery() as nursery:
        from chatd.db.pool import PoolConfig, open_pool

        async with open_pool(PoolConfig(database_url)) as pool:
            small = await start_chatd(nursery, settings, pool)
            session = await make_session(small)
            async with open_ws(small.url) as ws:
                await join(ws, session)
                # 3,000 messages at once: far more than 8 events plus the socket buffers.
                await trio.to_thread.run_sync(insert_bot_messages, database_url, session, 3000)
                seen: list[int] = []
                with trio.fail_after(10):
                    try:
                        while True:
                            event = await receive(ws)
                            if event["type"] == "new_message":
                                seen.append(event["message"]["seq"])
                    except ConnectionClosed as closed:
                        code = closed.reason.code
            assert code == 4008
            assert seen == list(range(1, len(seen) + 1))  # what came before, in order
            async with open_ws(small.url) as ws:
                await join(ws, session, last_seq=len(seen))
                rest = await messages_until(ws, 3000, seconds=20)
            assert rest == list(range(len(seen) + 1, 3001))
            small.stop.set()


async def test_a_peer_that_stops_reading_is_dropped_after_the_send_timeout(
    database_url: str,
) -> None:
    # Events come slowly enough for the writer to keep up until the socket buffers are full:
    # then a frame stays half sent (no overflow of the event buffer to notice), and only the
    # kernel's send timeout (TCP_USER_TIMEOUT) can end the wait.
    settings = make_settings(
        database_url,
        server={"send_timeout_seconds": 1.0},
        websocket={"heartbeat_interval_seconds": 30, "send_buffer": 10_000},
    )
    async with trio.open_nursery() as nursery:
        from chatd.db.pool import PoolConfig, open_pool

        async with open_pool(PoolConfig(database_url)) as pool:
            small = await start_chatd(nursery, settings, pool)
            services = small.services
            session = await make_session(small)
            async with raw_joined(small.url, session):  # and never read again
                assert (services.websockets.statistics().open, services.hub.connections) == (1, 1)
                pushed = 0
                with trio.fail_after(20):
                    while services.websockets.statistics().open:
                        # 2.5 MB a round: loopback buffers hold a few rounds at most
                        await trio.to_thread.run_sync(
                            insert_bot_messages, database_url, session, 40, 65536
                        )
                        pushed += 40
                        await trio.sleep(0.3)
            assert pushed < 40 * 40  # it went within a few rounds of the buffers filling
            assert (services.hub.connections, len(services.liveness)) == (0, 0)
            small.stop.set()


async def test_leave_chat_closes_normally(chatd: RunningChatd) -> None:
    session = await make_session(chatd)
    async with open_ws(chatd.url) as ws:
        await join(ws, session)
        await send(ws, {"type": "leave_chat", "sessionId": session.id})
        assert await close_code(ws) == 1000


async def test_shutdown_closes_with_1001(chatd: RunningChatd) -> None:
    session = await make_session(chatd)
    async with open_ws(chatd.url) as ws:
        await join(ws, session)
        chatd.stop.set()
        assert await close_code(ws) == 1001
