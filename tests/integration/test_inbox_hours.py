"""Nobody there, against a real chatd, PostgreSQL, alert sink and SMTP server: a handoff outside
business hours or with no agent online tells the shopper (with the expected reply time) and
alerts the staff by webhook and email; the shopper's email reaches the inbox; agents' presence
follows their inbox sockets and expires; the handoff metrics move."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trio
from structlog.testing import capture_logs

from chatd.core.staff import Role
from tests.chat import Session, new_session, send
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.sink import Received, Reply, Status
from tests.smtp import SmtpSink, start_smtp
from tests.staff import Staff, add_agent, sign_in
from tests.ws import join, open_ws, receive_type


def closed_now() -> str:
    """Holidays around today (UTC): closed now, open again in two days."""
    today = datetime.now(UTC).date()
    return ", ".join(str(today + timedelta(days=d)) for d in (-1, 0, 1))


@pytest.fixture
async def smtp(nursery: trio.Nursery) -> SmtpSink:
    return await start_smtp(nursery)


async def pipeline(
    nursery: trio.Nursery, database_url: str, smtp: SmtpSink, **inbox: object
) -> Pipeline:
    pipe = await open_pipeline(
        nursery,
        database_url,
        inbox={"handoff_check_interval_seconds": 0.1, "presence_ttl_seconds": 3, **inbox},
        alert_email={
            "host": "127.0.0.1",
            "port": smtp.port,
            "security": "none",
            "sender": "chatd@shop.example",
            "recipients": "staff@shop.example, boss@shop.example",
            "timeout_seconds": 5,
        },
    )
    # The alerts go to the same sink as n8n's calls, on their own path.
    settings = pipe.chatd.services.settings
    pipe.chatd.services.state.settings = settings.model_copy(
        update={
            "alerts": settings.alerts.model_copy(update={"webhook_url": f"{pipe.sink.url}/alerts"})
        }
    )
    pipe.sink.behave(Reply("Bot here."))
    return pipe


@pytest.fixture
async def closed(
    nursery: trio.Nursery, database_url: str, smtp: SmtpSink
) -> AsyncIterator[Pipeline]:
    pipe = await pipeline(
        nursery, database_url, smtp, holidays=closed_now(), expected_reply="2 hours"
    )
    yield pipe
    pipe.chatd.stop.set()


@pytest.fixture
async def open_shop(
    nursery: trio.Nursery, database_url: str, smtp: SmtpSink
) -> AsyncIterator[Pipeline]:
    pipe = await pipeline(nursery, database_url, smtp, expected_reply="30 minutes")
    yield pipe
    pipe.chatd.stop.set()


async def alerts(pipe: Pipeline, n: int) -> list[Received]:
    with trio.fail_after(10):
        while len(found := [r for r in pipe.sink.requests if r.path == "/alerts"]) < n:
            await trio.sleep(0.05)
    return found


async def handoff(client: Any, chat: Session) -> None:
    asked = await client.post("/api/chat/handoff", headers=chat.auth, json={"sessionId": chat.id})
    assert asked.status_code == 200, asked.text
    assert asked.json()["state"] == "waiting"


async def next_message(ws: Any) -> dict[str, Any]:
    return (await receive_type(ws, "new_message"))["message"]  # type: ignore[no-any-return]


async def test_handoff_outside_hours_tells_the_shopper_alerts_and_mails(
    closed: Pipeline, smtp: SmtpSink
) -> None:
    anna = await sign_in(closed.chatd.client(), await add_agent(closed.chatd.services.pool, "Anna"))
    cookie = f"chatd_staff={anna.client.cookies['chatd_staff']}"
    async with (
        closed.chatd.client() as shopper,
        open_ws(closed.chatd.url, path="/api/inbox/ws", cookie=cookie),  # online, but closed
    ):
        chat = await new_session(shopper)
        async with open_ws(closed.chatd.url) as widget:
            await join(widget, chat)
            await handoff(shopper, chat)
            asked = await next_message(widget)
            assert asked["metadata"]["conversation"]["event"] == "handoff_requested"
            notice = await next_message(widget)
            assert notice["senderType"] == "system"
            assert "No one is available right now — we are back" in notice["content"]
            meta = notice["metadata"]["conversation"]
            assert meta["event"] == "nobody_available"
            assert meta["open"] is False
            assert meta["expectedReply"] == "2 hours"
            assert meta["askEmail"] is True
            back_at = datetime.fromisoformat(meta["backAt"])
            assert back_at.date() == datetime.now(UTC).date() + timedelta(days=2)

            posted = (await alerts(closed, 1))[0].json
            assert posted["alert"]["id"] == "handoff_nobody_there"
            assert posted["alert"]["sessionId"] == chat.id
            assert "outside business hours" in posted["text"]
            mail = (await smtp.wait_for(1))[0]
            assert mail.recipients == ["staff@shop.example", "boss@shop.example"]
            assert chat.id in str(mail.message["Subject"])
            assert "/inbox" in mail.message.get_payload()  # type: ignore[operator]

            # The shopper leaves an email: a bad one is refused and changes nothing.
            for bad in ("not-an-email", "a@b", "", 7):
                refused = await shopper.post(
                    "/api/chat/contact-email",
                    headers=chat.auth,
                    json={"sessionId": chat.id, "email": bad},
                )
                assert refused.status_code == 400, refused.text
                assert "email" in refused.text
            no_token = await shopper.post(
                "/api/chat/contact-email", json={"sessionId": chat.id, "email": "sam@x.example"}
            )
            assert no_token.status_code == 401
            row = (await anna.client.get(f"/api/inbox/conversations/{chat.id}")).json()
            assert row["conversation"]["guestEmail"] is None
            left = await shopper.post(
                "/api/chat/contact-email",
                headers=chat.auth,
                json={"sessionId": chat.id, "email": "sam@shop.example"},
            )
            assert left.status_code == 200, left.text
            thanks = await next_message(widget)
            assert thanks["content"] == "Thanks! We will answer at sam@shop.example."
            row = (await anna.client.get(f"/api/inbox/conversations/{chat.id}")).json()
            assert row["conversation"]["guestEmail"] == "sam@shop.example"
            assert row["conversation"]["state"] == "waiting"  # still waits in the inbox
    await anna.client.aclose()


async def test_no_agent_online_within_hours_and_one_online(
    open_shop: Pipeline, smtp: SmtpSink
) -> None:
    pipe = open_shop
    async with pipe.chatd.client() as shopper, open_ws(pipe.chatd.url) as widget:
        chat = await new_session(shopper)
        await join(widget, chat)
        await handoff(shopper, chat)
        await next_message(widget)
        notice = await next_message(widget)
        assert notice["content"].startswith(
            "No one is available right now — we usually reply within 30 minutes."
        )
        assert notice["metadata"]["conversation"]["open"] is True
        assert "no agent is online" in (await alerts(pipe, 1))[0].json["text"]
        await smtp.wait_for(1)

        # With an agent's inbox open, a handoff is judged and nobody is told anything.
        anna = await sign_in(pipe.chatd.client(), await add_agent(pipe.chatd.services.pool, "Anna"))
        cookie = f"chatd_staff={anna.client.cookies['chatd_staff']}"
        async with open_ws(pipe.chatd.url, path="/api/inbox/ws", cookie=cookie):
            await online(anna, ["Anna"])
            second = await new_session(shopper)
            await handoff(shopper, second)
            assert await judged(pipe, second.id) is False
            messages = await pipe.messages(second)
            assert [m["metadata"]["conversation"]["event"] for m in messages] == [
                "handoff_requested"
            ]
        assert len(smtp.mails) == 1
        assert len(await alerts(pipe, 1)) == 1
        await anna.client.aclose()


async def judged(pipe: Pipeline, session_id: str) -> bool:
    """Waits for the handoff watch to judge the session's handoff: whether nobody was there."""
    with trio.fail_after(10):
        while True:
            async with pipe.chatd.services.pool.connection() as conn:
                row = await (
                    await conn.execute(
                        "SELECT nobody FROM chat_handoffs WHERE session_id = %s"
                        " AND checked_at IS NOT NULL",
                        (session_id,),
                    )
                ).fetchone()
            if row is not None:
                return bool(row["nobody"])
            await trio.sleep(0.05)


async def online(staff: Staff, names: list[str]) -> dict[str, Any]:
    with trio.fail_after(10):
        while True:
            got = await staff.client.get("/api/inbox/presence")
            assert got.status_code == 200, got.text
            body: dict[str, Any] = got.json()
            if [a["name"] for a in body["agents"]] == names:
                return body
            await trio.sleep(0.05)


async def test_presence_follows_the_inbox_socket_and_expires(open_shop: Pipeline) -> None:
    pipe = open_shop
    pool = pipe.chatd.services.pool
    anna = await sign_in(pipe.chatd.client(), await add_agent(pool, "Anna"))
    ben = await add_agent(pool, "Ben", Role.ADMIN)
    cookie = f"chatd_staff={anna.client.cookies['chatd_staff']}"
    body = await online(anna, [])
    assert body["open"] is True
    assert body["backAt"] is None
    assert body["expectedReply"] == "30 minutes"
    async with open_ws(pipe.chatd.url, path="/api/inbox/ws", cookie=cookie):
        await online(anna, ["Anna"])
        assert await metric(pipe, "chatd_agents_online") == 1
    await online(anna, [])  # the socket closed: gone at once

    # A process killed on the spot leaves its row behind, unrenewed: it expires.
    await pipe.chatd.services.presence.enter("dead-process.1", ben.id, 1.0)
    await online(anna, ["Ben"])
    await trio.sleep(1.1)
    await online(anna, [])
    assert await metric(pipe, "chatd_agents_online") == 0

    # Presence is for signed-in staff only.
    async with pipe.chatd.client() as stranger:
        assert (await stranger.get("/api/inbox/presence")).status_code == 401
    await anna.client.aclose()


async def metric(pipe: Pipeline, name: str, labels: str = "") -> float:
    async with pipe.chatd.client() as client:
        text = (await client.get("/metrics")).text
    pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" (\S+)"
    found = re.search(rf"^{pattern}$", text, re.MULTILINE)
    assert found is not None, f"{name}{labels} not in /metrics"
    return float(found.group(1))


async def test_handoff_metrics(open_shop: Pipeline) -> None:
    pipe = open_shop
    anna = await sign_in(pipe.chatd.client(), await add_agent(pipe.chatd.services.pool, "Anna"))
    assert await metric(pipe, "chatd_handoffs_total", 'requested_by="shopper"') == 0
    assert await metric(pipe, "chatd_first_human_reply_seconds_count") == 0
    async with pipe.chatd.client() as shopper:
        asked = await new_session(shopper)
        await handoff(shopper, asked)
        assert await judged(pipe, asked.id) is True
        assert await metric(pipe, "chatd_handoffs_total", 'requested_by="shopper"') == 1
        assert await metric(pipe, "chatd_conversations_waiting") == 1
        assert await metric(pipe, "chatd_nobody_there_notices_total") == 1

        # The bot asks for a person: counted as the bot's.
        pipe.sink.behave(Reply("A colleague will join.", actions=[{"type": "handoff"}]))
        by_bot = await new_session(shopper)
        await send(shopper, by_bot, "a person please")
        await judged(pipe, by_bot.id)
        assert await metric(pipe, "chatd_handoffs_total", 'requested_by="bot"') == 1
        assert await metric(pipe, "chatd_conversations_waiting") == 2

        # An agent takes a bot conversation at will: the agent's handoff.
        pipe.sink.behave(Reply("Bot here."))
        at_will = await new_session(shopper)
        taken = await anna.post(f"/api/inbox/conversations/{at_will.id}/take")
        assert taken.status_code == 200, taken.text
        assert await metric(pipe, "chatd_handoffs_total", 'requested_by="agent"') == 1

        # The first human reply after the shopper's handoff is timed; a second is not.
        assert (await anna.post(f"/api/inbox/conversations/{asked.id}/take")).status_code == 200
        assert await metric(pipe, "chatd_conversations_waiting") == 1
        for text in ("Hello!", "Still there?"):
            sent = await anna.post(
                f"/api/inbox/conversations/{asked.id}/messages", {"content": text}
            )
            assert sent.status_code == 200, sent.text
        assert await metric(pipe, "chatd_first_human_reply_seconds_count") == 1
        assert await metric(pipe, "chatd_first_human_reply_seconds_bucket", 'le="30.0"') == 1
        assert 0 < await metric(pipe, "chatd_first_human_reply_seconds_sum") < 30
    await anna.client.aclose()


async def test_a_long_wait_is_alerted_once(
    nursery: trio.Nursery, database_url: str, smtp: SmtpSink
) -> None:
    pipe = await pipeline(nursery, database_url, smtp, waiting_alert_seconds=0.5)
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper)
        await handoff(shopper, chat)
        found = await alerts(pipe, 2)  # nobody there, then the long wait
        assert [r.json["alert"]["id"] for r in found] == [
            "handoff_nobody_there",
            "handoff_waiting_long",
        ]
        assert "has waited" in found[1].json["text"]
        await trio.sleep(0.6)
        assert len([r for r in pipe.sink.requests if r.path == "/alerts"]) == 2
    pipe.chatd.stop.set()


async def test_failed_alerts_are_logged_counted_and_harmless(
    nursery: trio.Nursery, database_url: str, smtp: SmtpSink
) -> None:
    pipe = await pipeline(nursery, database_url, smtp)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings = pipe.chatd.services.settings
    pipe.chatd.services.state.settings = settings.model_copy(
        update={"alert_email": settings.alert_email.model_copy(update={"port": closed_port})}
    )
    pipe.sink.behave(Status(500))  # the alerts webhook fails too
    failed_post = 'channel="webhook",outcome="failed"'
    failed_mail = 'channel="email",outcome="failed"'
    async with pipe.chatd.client() as shopper:
        with capture_logs() as logs:
            for n in (1, 2):  # the watch goes on after failures
                chat = await new_session(shopper)
                await handoff(shopper, chat)
                assert await judged(pipe, chat.id) is True
                with trio.fail_after(10):
                    while await metric(pipe, "chatd_handoff_alerts_total", failed_mail) < n:
                        await trio.sleep(0.05)
                assert await metric(pipe, "chatd_handoff_alerts_total", failed_post) == n
    events = [e["event"] for e in logs]
    assert events.count("handoff_alert_post_failed") == 2
    assert events.count("alert_mail_failed") == 2
    assert await metric(pipe, "chatd_nobody_there_notices_total") == 2
    pipe.chatd.stop.set()
