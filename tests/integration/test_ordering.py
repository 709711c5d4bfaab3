"""Per-session seq is gap-free and increasing however sends race, within and across processes."""

from __future__ import annotations

import trio

from chatd.db.pool import PoolConfig, open_pool
from tests.chat import Session, new_session, send
from tests.conftest import RunningChatd, make_settings, start_chatd


async def _stored_seqs(chatd: RunningChatd, session: Session) -> tuple[list[int], list[int]]:
    async with chatd.services.pool.connection() as conn:
        messages = await (
            await conn.execute(
                "SELECT seq FROM chat_messages WHERE session_id = %s ORDER BY seq", [session.id]
            )
        ).fetchall()
        jobs = await (
            await conn.execute(
                "SELECT seq FROM chat_webhook_queue WHERE session_id = %s ORDER BY seq",
                [session.id],
            )
        ).fetchall()
    return [r["seq"] for r in messages], [r["seq"] for r in jobs]


async def test_fifty_concurrent_sends_get_seq_1_to_50(
    database_url: str, nursery: trio.Nursery
) -> None:
    settings = make_settings(database_url, chat={"rate_limit_max": 1000})
    async with open_pool(PoolConfig(database_url, max_size=20)) as pool:
        chatd = await start_chatd(nursery, settings, pool)
        async with chatd.client() as client:
            session = await new_session(client)
            answers: dict[int, int] = {}

            async def one(i: int) -> None:
                response = await send(client, session, f"m{i}", clientMessageId=f"c{i}")
                assert response.status_code == 200, response.text
                answers[i] = response.json()["seq"]

            async with trio.open_nursery() as senders:
                for i in range(50):
                    senders.start_soon(one, i)
            assert sorted(answers.values()) == list(range(1, 51))
            assert await _stored_seqs(chatd, session) == (list(range(1, 51)), list(range(1, 51)))
        chatd.stop.set()


async def test_two_chatd_apps_on_one_database_keep_seq_gap_free(
    database_url: str, nursery: trio.Nursery
) -> None:
    settings = make_settings(database_url, chat={"rate_limit_max": 1000})
    async with (
        open_pool(PoolConfig(database_url)) as pool_a,
        open_pool(PoolConfig(database_url)) as pool_b,
    ):
        app_a = await start_chatd(nursery, settings, pool_a)
        app_b = await start_chatd(nursery, settings, pool_b)
        assert app_a.url != app_b.url
        async with app_a.client() as a, app_b.client() as b:
            session = await new_session(a)
            seen: list[int] = []

            async def sender(client: object, prefix: str) -> None:
                for i in range(40):
                    response = await send(client, session, f"{prefix}{i}")  # type: ignore[arg-type]
                    assert response.status_code == 200, response.text
                    seen.append(response.json()["seq"])

            async with trio.open_nursery() as senders:
                senders.start_soon(sender, a, "a")
                senders.start_soon(sender, b, "b")
            assert sorted(seen) == list(range(1, 81))
            messages, jobs = await _stored_seqs(app_a, session)
            assert messages == jobs == list(range(1, 81))
            # each app's own messages kept their order too
            async with pool_a.connection() as conn:
                rows = await (
                    await conn.execute(
                        "SELECT content FROM chat_messages WHERE session_id = %s ORDER BY seq",
                        [session.id],
                    )
                ).fetchall()
            for prefix in "ab":
                mine = [int(r["content"][1:]) for r in rows if r["content"].startswith(prefix)]
                assert mine == list(range(40))
        app_a.stop.set()
        app_b.stop.set()


async def test_a_full_mailbox_answers_503_with_retry_after(
    database_url: str, nursery: trio.Nursery
) -> None:
    settings = make_settings(
        database_url, chat={"rate_limit_max": 1000}, actors={"mailbox_size": 1}
    )
    async with open_pool(PoolConfig(database_url, max_size=4)) as pool:
        chatd = await start_chatd(nursery, settings, pool)
        async with chatd.client() as client:
            session = await new_session(client)
            statuses: list[int] = []
            seqs: list[int] = []
            retry_after: set[str] = set()

            async def one(i: int) -> None:
                response = await send(client, session, f"m{i}")
                statuses.append(response.status_code)
                if response.status_code == 200:
                    seqs.append(response.json()["seq"])
                else:
                    assert response.json()["error"]["code"] == "session_busy"
                    retry_after.add(response.headers["Retry-After"])

            async with trio.open_nursery() as senders:
                for i in range(40):
                    senders.start_soon(one, i)
            assert set(statuses) == {200, 503}
            assert retry_after == {"1"}
            assert sorted(seqs) == list(range(1, len(seqs) + 1))  # the accepted ones are gap-free
        chatd.stop.set()
