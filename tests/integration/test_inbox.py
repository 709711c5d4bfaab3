"""Human takeover against a real chatd, PostgreSQL and n8n sink: handoff, take over (one winner
of 20), agent replies, the bot kept quiet, hand back; sign-in, CSRF and roles; bad input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from structlog.testing import capture_logs
from trio_websocket import ConnectionRejected

from chatd.core.staff import Role
from tests.chat import Session, new_session, send, table_counts
from tests.conftest import make_settings, start_chatd
from tests.integration.test_delivery import SECRET, Pipeline, _pool, open_pipeline
from tests.sink import Reply, sign
from tests.staff import PASSWORD, Staff, add_agent, sign_in
from tests.ws import join, open_ws, receive_type

UNKNOWN = "0b6e2c1f-9a3d-4e5b-8c7f-1d2e3f4a5b6c"


@pytest.fixture
async def pipe(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(nursery, database_url)
    pipe.sink.behave(Reply("Bot here."))
    yield pipe
    pipe.chatd.stop.set()


async def staff(pipe: Pipeline, name: str, role: Role = Role.AGENT) -> Staff:
    agent = await add_agent(pipe.chatd.services.pool, name, role)
    return await sign_in(pipe.chatd.client(), agent)


async def state(pipe: Pipeline, session_id: str) -> tuple[str, str | None]:
    async with pipe.chatd.services.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT conversation_state, agent_id FROM chat_sessions WHERE id = %s",
                (session_id,),
            )
        ).fetchone()
    assert row is not None
    return row["conversation_state"], row["agent_id"]


async def wait_messages(pipe: Pipeline, chat: Session, n: int) -> list[dict[str, Any]]:
    with trio.fail_after(10):
        while len(messages := await pipe.messages(chat)) < n:
            await trio.sleep(0.02)
    return messages


async def test_handoff_take_reply_hand_back(pipe: Pipeline) -> None:
    anna = await staff(pipe, "Anna")
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper, guestEmail="sam@shop.example")
        await send(shopper, chat, "hello")
        await wait_messages(pipe, chat, 2)  # the bot answered
        asked = await shopper.post(
            "/api/chat/handoff", headers=chat.auth, json={"sessionId": chat.id, "reason": "refund"}
        )
        assert asked.status_code == 200, asked.text
        assert asked.json()["state"] == "waiting"
        again = await shopper.post(
            "/api/chat/handoff", headers=chat.auth, json={"sessionId": chat.id}
        )
        assert again.json() == {"state": "waiting", "message": None}
        waiting = (await anna.client.get("/api/inbox/conversations?view=waiting")).json()
        assert [c["sessionId"] for c in waiting["conversations"]] == [chat.id]
        assert waiting["conversations"][0]["handoffReason"] == "refund"

        # While waiting, nothing goes to n8n.
        calls = len(pipe.sink.for_session(chat.id))
        assert (await send(shopper, chat, "anyone there?")).json()["status"] == "delivered"

        taken = await anna.post(f"/api/inbox/conversations/{chat.id}/take")
        assert taken.status_code == 200, taken.text
        assert taken.json()["conversation"]["agentName"] == "Anna"
        assert taken.json()["message"]["content"] == "Anna joined the chat"
        assert await state(pipe, chat.id) == ("human", anna.agent.id)

        replied = await anna.post(
            f"/api/inbox/conversations/{chat.id}/messages", {"content": "Hi, Anna here."}
        )
        assert replied.status_code == 200, replied.text
        await send(shopper, chat, "thanks Anna")
        messages = await pipe.messages(chat)
        agent_msgs = [m for m in messages if m["senderType"] == "agent"]
        assert [(m["content"], m["metadata"]["agentName"]) for m in agent_msgs] == [
            ("Hi, Anna here.", "Anna")
        ]
        await trio.sleep(0.3)
        assert len(pipe.sink.for_session(chat.id)) == calls  # the bot was not called

        back = await anna.post(f"/api/inbox/conversations/{chat.id}/hand-back")
        assert back.status_code == 200, back.text
        assert await state(pipe, chat.id) == ("bot", None)
        before = len(await pipe.messages(chat))
        await send(shopper, chat, "one more question")
        after = await wait_messages(pipe, chat, before + 2)
        assert after[-1]["senderType"] == "bot"
        assert len(pipe.sink.for_session(chat.id)) == calls + 1

        detail = (await anna.client.get(f"/api/inbox/conversations/{chat.id}")).json()
        assert [a["action"] for a in detail["audit"]] == [
            "handoff_requested",
            "taken",
            "replied",
            "handed_back",
        ]
        assert detail["conversation"]["guestEmail"] == "sam@shop.example"
    await anna.client.aclose()


async def test_closing_ends_the_conversation_as_staff_closing_does(pipe: Pipeline) -> None:
    """One notion of closed: an agent's close ends the session as the admin API's staff close
    does (the widget is asked to rate it); a shopper's own close shows in the inbox as closed."""
    anna = await staff(pipe, "Anna")
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper)
        await send(shopper, chat, "hello")
        await wait_messages(pipe, chat, 2)
        assert (await anna.post(f"/api/inbox/conversations/{chat.id}/take")).status_code == 200
        closed = await anna.post(f"/api/inbox/conversations/{chat.id}/close")
        assert closed.status_code == 200, closed.text
        assert closed.json()["conversation"]["state"] == "closed"
        ended = closed.json()["message"]
        assert ended["content"] == "Chat ended"
        assert (ended["metadata"]["event"], ended["metadata"]["by"]) == ("session_closed", "staff")
        assert await state(pipe, chat.id) == ("closed", None)
        view = (await shopper.get(f"/api/chat/session/{chat.id}", headers=chat.auth)).json()
        assert (view["status"], view["ratingRequested"]) == ("closed", True)
        late = await send(shopper, chat, "one more thing")
        assert (late.status_code, late.json()["error"]["code"]) == (410, "session_expired")
        again = await anna.post(f"/api/inbox/conversations/{chat.id}/close")
        assert (again.status_code, again.json()["error"]["code"]) == (409, "conversation_closed")
        listed = (await anna.client.get("/api/inbox/conversations?view=closed")).json()
        assert [c["sessionId"] for c in listed["conversations"]] == [chat.id]
        live = (await anna.client.get("/api/inbox/conversations?view=open")).json()
        assert chat.id not in [c["sessionId"] for c in live["conversations"]]

        other = await new_session(shopper)
        await send(shopper, other, "hi")
        assert (await anna.post(f"/api/inbox/conversations/{other.id}/take")).status_code == 200
        bye = await shopper.post(f"/api/chat/session/{other.id}/close", headers=other.auth)
        assert bye.status_code == 200, bye.text
        assert await state(pipe, other.id) == ("closed", None)
        detail = (await anna.client.get(f"/api/inbox/conversations/{other.id}")).json()
        assert detail["conversation"]["state"] == "closed"
        assert (detail["audit"][-1]["action"], detail["audit"][-1]["detail"]) == (
            "closed",
            {"by": "shopper"},
        )
    await anna.client.aclose()


async def test_twenty_concurrent_takeovers_one_holder(pipe: Pipeline) -> None:
    agents = [await staff(pipe, f"Agent{i}") for i in range(20)]
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper)
    statuses: list[int] = []

    async def take(who: Staff) -> None:
        response = await who.post(f"/api/inbox/conversations/{chat.id}/take")
        statuses.append(response.status_code)
        if response.status_code == 409:
            assert response.json()["error"]["code"] == "conversation_held"

    async with trio.open_nursery() as nursery:
        for who in agents:
            nursery.start_soon(take, who)
    assert sorted(statuses) == [200] + [409] * 19
    state_now, holder = await state(pipe, chat.id)
    assert state_now == "human"
    assert holder in {a.agent.id for a in agents}
    joined = [m for m in await pipe.messages(chat) if m["senderType"] == "system"]
    assert len(joined) == 1
    for who in agents:
        await who.client.aclose()


async def test_bot_handoff_action_moves_to_waiting(pipe: Pipeline) -> None:
    pipe.sink.behave(
        Reply("I'll ask a colleague to join.", actions=[{"type": "handoff", "reason": "asked"}])
    )
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper)
        await send(shopper, chat, "Talk to a human")
        await wait_messages(pipe, chat, 2)
    assert await state(pipe, chat.id) == ("waiting", None)


async def test_bot_reply_while_held_is_not_shown(pipe: Pipeline) -> None:
    anna = await staff(pipe, "Anna")
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper)
        await anna.post(f"/api/inbox/conversations/{chat.id}/take")
        # A late callback from n8n: accepted, not stored, not shown.
        body = json.dumps({"sessionId": chat.id, "response": "late bot answer"}).encode()
        async with pipe.chatd.client() as n8n:
            response = await n8n.post(
                "/api/chat/webhook",
                content=body,
                headers={"Content-Type": "application/json", **sign(body, SECRET, "hex")},
            )
        assert response.status_code == 200, response.text
        assert response.json()["held"] is True
        assert all(m["content"] != "late bot answer" for m in await pipe.messages(chat))
    await anna.client.aclose()


async def test_sign_in_csrf_and_sign_out(pipe: Pipeline) -> None:
    agent = await add_agent(pipe.chatd.services.pool, "Bea")
    async with pipe.chatd.client() as client:
        with capture_logs() as logs:
            wrong = await client.post(
                "/api/staff/sign-in", json={"email": agent.email, "password": "not it at all"}
            )
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "bad_credentials"
        assert "not it at all" not in repr(logs)
        bea = await sign_in(client, agent)
        cookie = next(c for c in client.cookies.jar if c.name == "chatd_staff")
        assert cookie.has_nonstandard_attr("HttpOnly")
        assert PASSWORD not in repr(logs)
        me = await client.get("/api/staff/me")
        assert me.json()["agent"]["name"] == "Bea"
        assert me.json()["csrfToken"] == bea.csrf
        async with pipe.chatd.client() as shopper:
            chat = await new_session(shopper)
        path = f"/api/inbox/conversations/{chat.id}/take"
        no_csrf = await client.post(path)
        assert no_csrf.status_code == 403
        assert no_csrf.json()["error"]["code"] == "csrf_failed"
        bad_csrf = await client.post(path, headers={"X-CSRF-Token": "0" * 64})
        assert bad_csrf.status_code == 403
        assert await state(pipe, chat.id) == ("bot", None)
        assert (await bea.post("/api/staff/sign-out")).status_code == 200
        assert (await client.get("/api/staff/me")).status_code == 401


async def test_who_may_reach_what(pipe: Pipeline) -> None:
    agent = await staff(pipe, "Cai")
    admin = await staff(pipe, "Dee", Role.ADMIN)
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper)
        inbox = [
            ("GET", "/api/inbox/conversations"),
            ("GET", f"/api/inbox/conversations/{chat.id}"),
            ("POST", f"/api/inbox/conversations/{chat.id}/take"),
            ("POST", f"/api/inbox/conversations/{chat.id}/close"),
            ("GET", "/api/staff/agents"),
        ]
        for method, path in inbox:
            anonymous = await shopper.request(method, path)
            assert anonymous.status_code == 401, path
            with_token = await shopper.request(method, path, headers=chat.auth)
            assert with_token.status_code == 401, path
    assert (await agent.client.get("/api/admin/overview")).status_code == 403
    assert (await agent.client.get("/api/admin/overview")).json()["error"]["code"] == "admin_only"
    assert (await admin.client.get("/api/admin/overview")).status_code == 200
    # Disabled: the next request is refused, the browser's cookie notwithstanding.
    assert (await agent.client.get("/api/inbox/conversations")).status_code == 200
    await pipe.chatd.services.agents.disable(agent.agent.email)
    assert (await agent.client.get("/api/inbox/conversations")).status_code == 401
    await agent.client.aclose()
    await admin.client.aclose()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/api/inbox/conversations?view=everything", None, 400, "invalid_query"),
        ("GET", "/api/inbox/conversations?limit=0", None, 400, "invalid_query"),
        ("GET", "/api/inbox/conversations?nope=1", None, 400, "unknown_field"),
        ("GET", "/api/inbox/conversations/not-an-id", None, 400, "invalid_id"),
        ("GET", f"/api/inbox/conversations/{UNKNOWN}", None, 404, "conversation_not_found"),
        ("POST", f"/api/inbox/conversations/{UNKNOWN}/take", None, 404, "conversation_not_found"),
        ("POST", "/api/inbox/conversations/{chat}/transfer", {"agentId": "x"}, 400, "invalid_id"),
        (
            "POST",
            "/api/inbox/conversations/{chat}/transfer",
            {"agentId": UNKNOWN},
            400,
            "unknown_agent",
        ),
        ("POST", "/api/inbox/conversations/{chat}/transfer", {}, 400, "missing_field"),
        ("POST", "/api/inbox/conversations/{chat}/messages", {"content": " "}, 400, None),
        (
            "POST",
            "/api/inbox/conversations/{chat}/messages",
            {"content": "hi", "x": 1},
            400,
            "unknown_field",
        ),
        ("POST", "/api/inbox/conversations/{chat}/messages", {"content": "hi"}, 409, "not_holding"),
        ("POST", "/api/inbox/conversations/{chat}/hand-back", None, 409, "conversation_state"),
        ("POST", "/api/staff/sign-in", {"email": "a@b.c"}, 400, "missing_field"),
    ],
)
async def test_bad_input_is_a_clear_4xx_and_changes_nothing(
    pipe: Pipeline, method: str, path: str, body: Any, status: int, code: str | None
) -> None:
    anna = await staff(pipe, "Anna")
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper)
    before = await table_counts(pipe.chatd.services.pool)
    headers = {"X-CSRF-Token": anna.csrf}
    response = await anna.client.request(
        method, path.replace("{chat}", chat.id), json=body, headers=headers
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    assert await table_counts(pipe.chatd.services.pool) == before
    assert await state(pipe, chat.id) == ("bot", None)
    await anna.client.aclose()


async def test_agent_and_shopper_on_two_processes(
    nursery: trio.Nursery, pipe: Pipeline, database_url: str
) -> None:
    """The shopper on process A, the agent on process B: each sees the other at once."""
    pool_b = await nursery.start(_pool, database_url)
    b = await start_chatd(nursery, make_settings(database_url), pool_b)
    agent = await add_agent(pipe.chatd.services.pool, "Anna")
    anna = await sign_in(b.client(), agent)
    cookie = f"chatd_staff={anna.client.cookies['chatd_staff']}"
    async with (
        pipe.chatd.client() as shopper,
        open_ws(b.url, path="/api/inbox/ws", cookie=cookie) as inbox,
    ):
        chat = await new_session(shopper)
        async with open_ws(pipe.chatd.url) as widget:
            await join(widget, chat)
            await shopper.post("/api/chat/handoff", headers=chat.auth, json={"sessionId": chat.id})
            seen = await receive_type(inbox, "new_message")
            assert seen["sessionId"] == chat.id
            assert seen["message"]["metadata"]["conversation"]["state"] == "waiting"
            await receive_type(widget, "new_message")  # the shopper's own notice
            assert (await anna.post(f"/api/inbox/conversations/{chat.id}/take")).status_code == 200
            joined = await receive_type(widget, "new_message")
            assert joined["message"]["content"] == "Anna joined the chat"
            await anna.post(f"/api/inbox/conversations/{chat.id}/messages", {"content": "Hello!"})
            reply = await receive_type(widget, "new_message")
            assert reply["message"]["senderType"] == "agent"
            assert reply["message"]["metadata"] == {"agentName": "Anna"}
            await send(shopper, chat, "hi Anna")
            while (event := await receive_type(inbox, "new_message"))["message"][
                "senderType"
            ] != "user":
                pass
            assert event["message"]["content"] == "hi Anna"
    await anna.client.aclose()
    b.stop.set()


async def test_inbox_socket_refuses_strangers(pipe: Pipeline) -> None:
    anna = await staff(pipe, "Anna")
    cookie = f"chatd_staff={anna.client.cookies['chatd_staff']}"
    refusals = [
        ({}, 401),
        ({"cookie": "chatd_staff=forged"}, 401),
        ({"cookie": cookie, "origin": "http://evil.example"}, 403),
    ]
    for kwargs, status in refusals:
        with pytest.RaisesGroup(ConnectionRejected, flatten_subgroups=True) as caught:
            async with open_ws(pipe.chatd.url, path="/api/inbox/ws", **kwargs):
                pass
        assert caught.value.exceptions[0].status_code == status  # type: ignore[union-attr]
    await anna.client.aclose()
