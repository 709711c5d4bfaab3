"""The inbox, live, against real chatd processes, PostgreSQL and a stand-in n8n: the agent's
typing reaches the shopper (on another process), unread counts kept on the server per agent,
an agent's inbox socket closed at once when its sign-ins end, and a streamed bot reply
withdrawn everywhere when an agent takes the conversation over."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from chatd.core.staff import Agent, hash_password
from tests.chat import new_session, send, table_counts
from tests.conftest import RunningChatd, make_settings, start_chatd
from tests.integration.test_delivery import Pipeline, _pool, open_pipeline
from tests.integration.test_streaming import Seen, read_until
from tests.sink import Reply, Stream, Wait, agent, chunk
from tests.staff import Staff, add_agent, sign_in
from tests.ws import join, open_ws, receive, receive_type
from tests.ws import send as send_frame

pytestmark = pytest.mark.timeout(60)

UNKNOWN = "0b6e2c1f-9a3d-4e5b-8c7f-1d2e3f4a5b6c"


@pytest.fixture
async def pipe(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(
        nursery,
        database_url,
        chat={"rate_limit_max": 1000},
        n8n={"stream_idle_timeout_seconds": 20},
    )
    pipe.sink.behave(Reply("Bot here."))
    yield pipe
    pipe.chatd.stop.set()


@pytest.fixture
async def other(nursery: trio.Nursery, database_url: str) -> AsyncIterator[RunningChatd]:
    """A second chatd process on the same database (it delivers nothing to n8n)."""
    running = await start_chatd(
        nursery, make_settings(database_url), await nursery.start(_pool, database_url)
    )
    yield running
    running.stop.set()


async def staff_on(chatd: RunningChatd, found: Agent) -> Staff:
    return await sign_in(chatd.client(), found)


def cookie(who: Staff) -> str:
    return f"chatd_staff={who.client.cookies['chatd_staff']}"


async def quiet(ws: WebSocketConnection, seconds: float) -> list[dict[str, Any]]:
    """Every event (heartbeats left out) that comes within `seconds`."""
    events: list[dict[str, Any]] = []
    with trio.move_on_after(seconds):
        while True:
            event = json.loads(await ws.get_message())
            if event["type"] != "heartbeat":
                events.append(event)
    return events


# -- the agent's typing ---------------------------------------------------------------------------


async def test_agent_typing_reaches_the_shopper_on_another_process(
    pipe: Pipeline, other: RunningChatd
) -> None:
    anna = await staff_on(other, await add_agent(pipe.chatd.services.pool, "Anna"))
    bea = await staff_on(other, await add_agent(pipe.chatd.services.pool, "Bea"))
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper)
        assert (await anna.post(f"/api/inbox/conversations/{chat.id}/take")).status_code == 200
        async with (
            open_ws(pipe.chatd.url) as widget,
            open_ws(other.url, path="/api/inbox/ws", cookie=cookie(anna)) as inbox,
            open_ws(other.url, path="/api/inbox/ws", cookie=cookie(bea)) as watcher,
        ):
            await join(widget, chat)
            await receive_type(widget, "new_message")  # "Anna joined the chat"
            # Bea does not hold it: her typing is not the shopper's business.
            await send_frame(watcher, {"type": "typing", "sessionId": chat.id, "isTyping": True})
            await send_frame(inbox, {"type": "typing", "sessionId": chat.id, "isTyping": True})
            typing = await receive_type(widget, "bot_typing")
            assert typing == {
                "type": "bot_typing",
                "sessionId": chat.id,
                "isTyping": True,
                "agentName": "Anna",
            }
            # The same value again within a second is not passed on; a change is, at once.
            await send_frame(inbox, {"type": "typing", "sessionId": chat.id, "isTyping": True})
            await send_frame(inbox, {"type": "typing", "sessionId": chat.id, "isTyping": False})
            stopped = await receive_type(widget, "bot_typing")
            assert (stopped["isTyping"], stopped["agentName"]) == (False, "Anna")
            # Bea's inbox sees Anna typing (the feed carries every session's events); Anna's
            # own socket is not sent her own typing back.
            seen_by_bea = [e for e in await quiet(watcher, 0.3) if e["type"] == "bot_typing"]
            assert [e["isTyping"] for e in seen_by_bea] == [True, False]
            assert not [e for e in await quiet(inbox, 0.1) if e["type"] == "bot_typing"]

            # Bad frames: a clear error, the socket stays open.
            for frame, code in [
                ("not json", "invalid_json"),
                (json.dumps({"type": "typing", "sessionId": "x", "isTyping": True}), "invalid_id"),
                (json.dumps({"type": "typing", "sessionId": chat.id}), "missing_field"),
                (json.dumps({"type": "shout", "sessionId": chat.id, "isTyping": True}), None),
                (json.dumps({"type": "typing", "sessionId": chat.id, "isTyping": 1}), None),
            ]:
                await inbox.send_message(frame)
                error = await receive_type(inbox, "error")
                assert error["message"]
                if code is not None:
                    assert error["code"] == code

            # The agent types, then the tab goes: the shopper is told the agent stopped.
            await trio.sleep(1.05)  # past the throttle's second
            await send_frame(inbox, {"type": "typing", "sessionId": chat.id, "isTyping": True})
            assert (await receive_type(widget, "bot_typing"))["isTyping"] is True
            await inbox.aclose()
            assert (await receive_type(widget, "bot_typing"))["isTyping"] is False
            assert not [e for e in await quiet(widget, 0.3) if e["type"] == "bot_typing"]
    await anna.client.aclose()
    await bea.client.aclose()


# -- unread counts ----------------------------------------------------------------------------------


async def test_unread_counts_are_kept_per_agent_on_the_server(
    pipe: Pipeline, other: RunningChatd
) -> None:
    found = await add_agent(pipe.chatd.services.pool, "Anna")
    laptop = await staff_on(pipe.chatd, found)
    phone = await staff_on(other, found)  # the same agent on another device and process
    bea = await staff_on(pipe.chatd, await add_agent(pipe.chatd.services.pool, "Bea"))

    async def unread(who: Staff, session_id: str) -> int:
        listed = (await who.client.get("/api/inbox/conversations?view=open")).json()
        (row,) = [c for c in listed["conversations"] if c["sessionId"] == session_id]
        detail = (await who.client.get(f"/api/inbox/conversations/{session_id}")).json()
        assert detail["conversation"]["unread"] == row["unread"]
        return int(row["unread"])

    async with (
        pipe.chatd.client() as shopper,
        open_ws(other.url, path="/api/inbox/ws", cookie=cookie(phone)) as phone_ws,
        open_ws(other.url, path="/api/inbox/ws", cookie=cookie(bea)) as bea_ws,
    ):
        chat = await new_session(shopper)
        await send(shopper, chat, "hello")
        await pipe.wait_messages(chat, 2)  # and the bot's answer (not counted: the shopper's are)
        await send(shopper, chat, "are you there?")
        await pipe.wait_messages(chat, 4)
        assert await unread(laptop, chat.id) == 2
        assert await unread(phone, chat.id) == 2
        assert await unread(bea, chat.id) == 2

        # The laptop opens it and marks what it has seen: 3 of 4 (the bot's last answer unseen).
        marked = await laptop.post(f"/api/inbox/conversations/{chat.id}/read", {"lastSeq": 3})
        assert marked.status_code == 200, marked.text
        assert marked.json() == {"sessionId": chat.id, "lastReadSeq": 3, "unread": 0}
        # A mark never goes back, nor past the conversation's last message.
        back = await laptop.post(f"/api/inbox/conversations/{chat.id}/read", {"lastSeq": 1})
        assert back.json()["lastReadSeq"] == 3
        ahead = await laptop.post(f"/api/inbox/conversations/{chat.id}/read", {"lastSeq": 99})
        assert ahead.json()["lastReadSeq"] == 4
        # The same on the phone, at once and after a reload; Bea's are her own.
        news = await receive_type(phone_ws, "conversation_read")
        assert (news["sessionId"], news["lastReadSeq"], news["agentId"]) == (chat.id, 3, found.id)
        assert (await receive_type(phone_ws, "conversation_read"))["lastReadSeq"] == 3
        assert not [e for e in await quiet(bea_ws, 0.3) if e["type"] == "conversation_read"]
        assert await unread(phone, chat.id) == 0
        assert await unread(bea, chat.id) == 2
        await send(shopper, chat, "one more")
        await pipe.wait_messages(chat, 6)
        assert await unread(phone, chat.id) == 1

        # Bad input: a clear 4xx, nothing changed.
        before = await table_counts(pipe.chatd.services.pool)
        for body, status, code in [
            ({"lastSeq": -1}, 400, "invalid_field"),
            ({"lastSeq": "3"}, 400, "invalid_field"),
            ({}, 400, "missing_field"),
            ({"lastSeq": 1, "x": 1}, 400, "unknown_field"),
        ]:
            response = await laptop.post(f"/api/inbox/conversations/{chat.id}/read", body)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code)
        missing = await laptop.post(f"/api/inbox/conversations/{UNKNOWN}/read", {"lastSeq": 1})
        assert (missing.status_code, missing.json()["error"]["code"]) == (
            404,
            "conversation_not_found",
        )
        bad_id = await laptop.post("/api/inbox/conversations/nope/read", {"lastSeq": 1})
        assert bad_id.json()["error"]["code"] == "invalid_id"
        no_csrf = await laptop.client.post(
            f"/api/inbox/conversations/{chat.id}/read", json={"lastSeq": 6}
        )
        assert no_csrf.status_code == 403
        anonymous = await shopper.post(
            f"/api/inbox/conversations/{chat.id}/read", json={"lastSeq": 6}, headers=chat.auth
        )
        assert anonymous.status_code == 401
        assert await table_counts(pipe.chatd.services.pool) == before
        assert await unread(laptop, chat.id) == 1
    for who in (laptop, phone, bea):
        await who.client.aclose()


# -- signed out: the socket ends at once ------------------------------------------------------------


async def closed_with(ws: WebSocketConnection, seconds: float) -> int | None:
    """The close code once the server ends the socket (well within the 15 s periodic check)."""
    with trio.fail_after(seconds):
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed as closed:
            return closed.reason.code
    return None  # pragma: no cover


@pytest.mark.parametrize("how", ["disable", "reset_password", "sign_out"])
async def test_an_agents_inbox_sockets_close_at_once_when_its_sign_ins_end(
    pipe: Pipeline, other: RunningChatd, how: str
) -> None:
    found = await add_agent(pipe.chatd.services.pool, "Anna")
    here = await staff_on(pipe.chatd, found)
    there = await staff_on(other, found)
    bea = await staff_on(other, await add_agent(pipe.chatd.services.pool, "Bea"))
    async with (
        open_ws(pipe.chatd.url, path="/api/inbox/ws", cookie=cookie(here)) as near,
        open_ws(other.url, path="/api/inbox/ws", cookie=cookie(there)) as far,
        open_ws(other.url, path="/api/inbox/ws", cookie=cookie(bea)) as bystander,
    ):
        await trio.sleep(0.2)  # both subscribed
        started = trio.current_time()
        if how == "disable":
            assert await pipe.chatd.services.agents.disable(found.email)
        elif how == "reset_password":
            new_hash = hash_password("another long passphrase")
            assert await pipe.chatd.services.agents.set_password(found.email, new_hash)
        else:
            assert (await here.post("/api/staff/sign-out")).status_code == 200
        assert await closed_with(near, 3) == 4001
        if how == "sign_out":  # the phone's sign-in is another: it stays
            assert not await quiet(far, 0.5)
        else:
            assert await closed_with(far, 3) == 4001  # on the other process too
        assert trio.current_time() - started < 3
        # Another agent's socket carries on, and was told nothing of it.
        async with pipe.chatd.client() as shopper:
            chat = await new_session(shopper)
            await shopper.post("/api/chat/handoff", headers=chat.auth, json={"sessionId": chat.id})
        event = await receive(bystander)
        assert (event["type"], event["sessionId"]) == ("new_message", chat.id)
    for who in (here, there, bea):
        await who.client.aclose()


# -- a streamed bot reply when an agent takes over ----------------------------------------------------


async def test_taking_over_withdraws_a_streaming_bot_reply_everywhere_and_stores_none(
    pipe: Pipeline, other: RunningChatd
) -> None:
    """The stream is read by process A (pipe); the agent takes over on B; shoppers' tabs on both
    see the streamed text withdrawn at once, and none of what n8n streams after it; the job
    completes with nothing stored. Handed back, the bot's next reply streams as before."""
    pipe.sink.behave(
        Stream([chunk("begin"), chunk("item", "agent", "Your "), chunk("item", "agent", "order "),
                Wait(), chunk("item", "agent", "ships "), chunk("item", "agent", "today."),
                chunk("end")])
    )  # fmt: skip
    anna = await staff_on(other, await add_agent(pipe.chatd.services.pool, "Anna"))
    async with (
        pipe.chatd.client() as shopper,
        open_ws(pipe.chatd.url) as near,
        open_ws(other.url) as far,
    ):
        chat = await new_session(shopper)
        await join(near, chat)
        await join(far, chat)
        sent = (await send(shopper, chat, "Where is my order?")).json()
        two = lambda s: len(s.of("message_delta")) == 2  # noqa: E731
        seen_near = await read_until(near, Seen(), two)
        seen_far = await read_until(far, Seen(), two)
        taken = await anna.post(f"/api/inbox/conversations/{chat.id}/take")
        assert taken.status_code == 200, taken.text
        ended = lambda s: bool(s.of("message_stream_end"))  # noqa: E731
        for ws, seen in ((near, seen_near), (far, seen_far)):
            await read_until(ws, seen, ended, seconds=3)
            (end,) = seen.of("message_stream_end")
            assert (end["messageId"], end["reason"]) == (
                seen.of("message_delta")[0]["messageId"],
                "taken_over",
            )
        pipe.sink.release()  # n8n goes on streaming: none of it is shown
        await pipe.wait_job(sent["messageId"], "completed")
        for ws, seen in ((near, seen_near), (far, seen_far)):
            seen.events.extend(await quiet(ws, 0.5))
            assert len(seen.of("message_delta")) == 2
            assert seen.shown_text() == {}
            assert seen.bot_messages() == [taken.json()["message"]]  # "Anna joined the chat"
        history = await pipe.messages(chat)
        assert [m["senderType"] for m in history] == ["user", "system"]
        assert history[0]["status"] == "delivered"  # n8n had it; its answer is not shown

        # Handed back: the bot streams again, in both processes.
        assert (await anna.post(f"/api/inbox/conversations/{chat.id}/hand-back")).status_code == 200
        pipe.sink.behave(Stream(agent("Back ", "again.")))
        await send(shopper, chat, "Hello?")
        again = Seen()
        await read_until(far, again, lambda s: any(
            m["content"] == "Back again." for m in s.bot_messages()))  # fmt: skip
        assert [d["text"] for d in again.of("message_delta")] == ["Back ", "again."]
    await anna.client.aclose()
