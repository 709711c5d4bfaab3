"""Idle keep-alive connections are closed: on stop at once, and after server.keep_alive_timeout_seconds."""

from __future__ import annotations

import httpx
import trio

from chatd.db.pool import Pool
from chatd.settings import Settings
from tests.conftest import make_settings, start_chatd


async def test_an_idle_keep_alive_connection_does_not_hold_the_stop(
    settings: Settings, pool: Pool
) -> None:
    assert settings.server.shutdown_grace_seconds == 10  # what an idle connection used to cost
    async with httpx.AsyncClient(timeout=5) as client:  # keeps its connection, like a browser
        async with trio.open_nursery() as nursery:
            running = await start_chatd(nursery, settings, pool)
            for path in ("/livez", "/api/chat/health"):
                assert (await client.get(f"{running.url}{path}")).status_code == 200
            posted = await client.post(f"{running.url}/api/chat/session", json={})
            assert posted.status_code == 200
            running.stop.set()
            stopping = trio.current_time()
        assert trio.current_time() - stopping < 1.0


async def test_the_server_closes_an_idle_keep_alive_connection(
    database_url: str, pool: Pool, nursery: trio.Nursery
) -> None:
    settings = make_settings(database_url, server={"keep_alive_timeout_seconds": 1})
    running = await start_chatd(nursery, settings, pool)
    host, port = running.url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(b"GET /livez HTTP/1.1\r\nHost: chatd\r\n\r\n")
    received = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some():
            received += chunk
    assert received.startswith(b"HTTP/1.1 200")  # answered, then closed by the server
    await stream.aclose()
    running.stop.set()
