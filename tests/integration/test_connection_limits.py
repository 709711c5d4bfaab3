"""One counter per client address for every live transport (WebSocket, SSE, waiting long-poll),
checked and counted in one step: concurrent arrivals cannot all slip past the check."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import trio

from chatd.db.pool import PoolConfig, open_pool
from tests.chat import Session, new_session, send
from tests.conftest import RunningChatd, make_settings, start_chatd
from tests.integration.test_ws_bad_input import rejected, rejection_code

LIMIT = 10


@asynccontextmanager
async def chatd_limited(database_url: str, limit: int) -> AsyncIterator[RunningChatd]:
    settings = make_settings(
        database_url,
        chat={"rate_limit_max": 10_000},
        websocket={"max_connections_per_ip": limit, "heartbeat_interval_seconds": 30},
    )
    async with open_pool(PoolConfig(database_url)) as pool, trio.open_nursery() as nursery:
        chatd = await start_chatd(nursery, settings, pool)
        try:
            yield chatd
        finally:
            chatd.stop.set()


async def hold_sse(url: str, session: Session, outcomes: Counter[int], done: trio.Event) -> None:
    """Open an event stream on its own connection; a 200 is held open until `done`."""
    host, port = url.removeprefix("http://").split(":")
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        request = (
            f"GET /api/chat/events/{session.id} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: {session.auth['Authorization']}\r\n\r\n"
        )
        await stream.send_all(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some()
        status = int(head.split(b" ", 2)[1])
        outcomes[status] += 1
        if status == 200:
            await done.wait()
        else:
            assert b"too_many_connections" in head or status == 429, head


async def test_concurrent_event_streams_from_one_address_are_held_to_the_limit(
    database_url: str,
) -> None:
    async with chatd_limited(database_url, LIMIT) as chatd:
        async with chatd.client() as client:
            session = await new_session(client)
        outcomes: Counter[int] = Counter()
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            for _ in range(4 * LIMIT):
                nursery.start_soon(hold_sse, chatd.url, session, outcomes, done)
            with trio.fail_after(10):
                while sum(outcomes.values()) < 4 * LIMIT:
                    await trio.sleep(0.01)
            assert outcomes == {200: LIMIT, 429: 3 * LIMIT}
            assert len(chatd.services.live_connections) == LIMIT
            done.set()
        with trio.fail_after(5):  # the streams' ends are counted
            while len(chatd.services.live_connections):
                await trio.sleep(0.01)


async def long_poll(
    client: httpx.AsyncClient, session: Session, statuses: list[int], after: int = 0, wait: int = 5
) -> None:
    response = await client.get(
        f"/api/chat/messages/{session.id}",
        params={"afterSeq": after, "wait": wait},
        headers=session.auth,
    )
    statuses.append(response.status_code)


async def test_waiting_long_polls_share_the_counter_with_streams_and_websockets(
    database_url: str,
) -> None:
    async with chatd_limited(database_url, 3) as chatd:
        live = chatd.services.live_connections
        async with chatd.client() as client:
            session = await new_session(client)
        statuses: list[int] = []
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
        async with (
            httpx.AsyncClient(base_url=chatd.url, timeout=10, limits=limits) as client,
            trio.open_nursery() as nursery,
        ):
            for _ in range(3):
                nursery.start_soon(long_poll, client, session, statuses)
            with trio.fail_after(5):
                while len(live) < 3:
                    await trio.sleep(0.01)
            # The address is full of waiting long-polls: nothing else gets in.
            refused: list[int] = []
            await long_poll(client, session, refused)
            assert refused == [429]
            response = await client.get(f"/api/chat/events/{session.id}", headers=session.auth)
            assert response.status_code == 429
            assert rejection_code(await rejected(chatd.url)) == (429, "too_many_connections")
            assert statuses == []  # still waiting
            await send(client, session, "hello")  # answers all three
        assert statuses == [200, 200, 200]
        with trio.fail_after(5):
            while len(live):
                await trio.sleep(0.01)
        async with chatd.client() as client:  # the places are free again
            ok: list[int] = []
            await long_poll(client, session, ok, after=1, wait=1)  # waits, then nothing
            assert ok == [200]
