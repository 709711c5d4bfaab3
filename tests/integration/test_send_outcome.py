"""A send's answer is the truth about its message, even when the database is slow.

The session's row lock is held by another transaction for longer than the call timeout (as a
long transaction elsewhere does): a send the actor has taken is answered when it commits (200,
late); one still waiting in the mailbox when its caller gives up is withdrawn (503, nothing
stored); a caller that hangs up does not crash the actor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from chatd.db.pool import Pool, PoolConfig, open_pool
from chatd.settings import Settings
from tests.chat import Session, new_session, send, table_counts
from tests.conftest import RunningChatd, make_settings, start_chatd
from tests.ws import join, open_ws, receive_type
from tests.ws import send as ws_send

CALL_TIMEOUT = 1.0
LOCK_SECONDS = 3.0


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, actors={"call_timeout_seconds": CALL_TIMEOUT})


@asynccontextmanager
async def session_row_locked(settings: Settings, session: Session) -> AsyncIterator[None]:
    """Another transaction holds `SELECT ... FOR UPDATE` on the session's row for the block."""
    async with (
        open_pool(PoolConfig(settings.database.url, min_size=1)) as other,
        other.connection() as conn,
        conn.transaction(),
    ):
        await conn.execute("SELECT 1 FROM chat_sessions WHERE id = %s FOR UPDATE", [session.id])
        yield


async def hold_lock(
    settings: Settings, session: Session, seconds: float, *, task_status: trio.TaskStatus[None]
) -> None:
    async with session_row_locked(settings, session):
        task_status.started()
        await trio.sleep(seconds)


async def user_messages(pool: Pool, session: Session) -> list[str]:
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT content FROM chat_messages WHERE session_id = %s ORDER BY seq",
                [session.id],
            )
        ).fetchall()
    return [row["content"] for row in rows]


async def test_a_send_taken_by_the_actor_is_answered_when_it_commits(
    chatd: RunningChatd, settings: Settings, nursery: trio.Nursery
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        await nursery.start(hold_lock, settings, session, LOCK_SECONDS)
        started = trio.current_time()
        response = await send(client, session, "slow but stored")
        waited = trio.current_time() - started
    assert response.status_code == 200, response.text  # not 503 for a stored message
    assert waited > LOCK_SECONDS - 0.5  # answered after the commit, well past the call timeout
    body = response.json()
    assert body["seq"] == 1
    assert await user_messages(chatd.services.pool, session) == ["slow but stored"]
    assert chatd.services.registry.statistics().restarts == 0


async def test_a_send_never_taken_is_withdrawn_and_answered_503(
    chatd: RunningChatd, settings: Settings, nursery: trio.Nursery
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        await nursery.start(hold_lock, settings, session, LOCK_SECONDS)
        answers: dict[str, httpx.Response] = {}

        async def send_one(content: str) -> None:
            answers[content] = await send(client, session, content)

        async with trio.open_nursery() as senders:
            senders.start_soon(send_one, "first")  # taken: waits on the lock
            await trio.sleep(0.2)
            senders.start_soon(send_one, "second")  # queued behind it past the call timeout
    assert answers["first"].status_code == 200, answers["first"].text
    second = answers["second"]
    assert second.status_code == 503, second.text
    assert second.json()["error"]["code"] == "session_timeout"
    assert "Retry-After" in second.headers
    # The 503 told the truth: "second" was never stored, even after the lock was released.
    await trio.sleep(0.3)
    assert await user_messages(chatd.services.pool, session) == ["first"]
    counts = await table_counts(chatd.services.pool)
    assert (counts["messages"], counts["jobs"], counts["seqs"]) == (1, 1, 1)
    # The session still works, and its seq has no gap.
    async with chatd.client() as client:
        again = await send(client, session, "second, again")
    assert (again.status_code, again.json()["seq"]) == (200, 2)


async def test_a_caller_that_hangs_up_mid_send_does_not_crash_the_actor(
    chatd: RunningChatd, settings: Settings, nursery: trio.Nursery
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
    await nursery.start(hold_lock, settings, session, LOCK_SECONDS)
    async with chatd.client() as client:
        with trio.move_on_after(0.5) as hung_up:  # the client closes its connection mid-send
            await send(client, session, "sent, then the tab closed")
    assert hung_up.cancelled_caught
    with trio.fail_after(LOCK_SECONDS + 5):
        while not await user_messages(chatd.services.pool, session):
            await trio.sleep(0.05)
    await trio.sleep(0.3)  # the actor's answer to nobody has happened by now
    assert await user_messages(chatd.services.pool, session) == ["sent, then the tab closed"]
    assert chatd.services.registry.statistics().restarts == 0
    async with chatd.client() as client:  # the same actor keeps serving the session
        after = await send(client, session, "next")
    assert (after.status_code, after.json()["seq"]) == (200, 2)
    assert chatd.services.registry.statistics().restarts == 0


async def test_a_websocket_send_is_acknowledged_late_not_refused(
    chatd: RunningChatd, settings: Settings, nursery: trio.Nursery
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
    async with open_ws(chatd.url) as ws:
        await join(ws, session)
        await nursery.start(hold_lock, settings, session, LOCK_SECONDS)
        await ws_send(
            ws,
            {"type": "send_message", "content": "over the socket", "clientMessageId": "c-1"},
        )
        ack = await receive_type(ws, "message_ack", LOCK_SECONDS + 5)
    assert (ack["clientMessageId"], ack["seq"]) == ("c-1", 1)
    assert await user_messages(chatd.services.pool, session) == ["over the socket"]


async def test_a_command_is_not_cancelled_by_the_actors_idle_timer(
    database_url: str, nursery: trio.Nursery
) -> None:
    """Only the wait for the next command is under the idle timer: a command taken near its end
    runs to its outcome."""
    settings = make_settings(
        database_url, actors={"idle_timeout_seconds": 2.0, "call_timeout_seconds": 5.0}
    )
    async with open_pool(PoolConfig(database_url)) as pool:
        chatd = await start_chatd(nursery, settings, pool)
        async with chatd.client() as client:
            session = await new_session(client)
            assert (await send(client, session, "wakes the actor")).status_code == 200
            await trio.sleep(1.5)  # the actor has waited 1.5 s of its 2 s for a next command
            await nursery.start(hold_lock, settings, session, 2.0)
            response = await send(client, session, "taken near the idle deadline")
        assert response.status_code == 200, response.text
        assert response.json()["seq"] == 2
        assert chatd.services.registry.statistics().restarts == 0
        chatd.stop.set()
