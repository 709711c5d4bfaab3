"""`chatd serve` talking to systemd: sd_notify datagrams on a real Unix socket the test binds as
NOTIFY_SOCKET, with the database behind a gate the test opens when it chooses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest
import trio
from psycopg.conninfo import conninfo_to_dict

from tests.e2e.test_serve import drain, serve_env, wait_listening

WATCHDOG_USEC = 200_000  # 0.2 s: pings every 0.1 s


class Notifications:
    """What chatd told "systemd", in order, with arrival times."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._sock = sock
        self.received: list[tuple[float, str]] = []
        self._changed = trio.Event()

    async def run(self) -> None:
        while True:
            data = await self._sock.recv(4096)
            for line in data.decode().splitlines():
                self.received.append((time.monotonic(), line))
            self._changed.set()
            self._changed = trio.Event()

    def lines(self, prefix: str) -> list[str]:
        return [line for _, line in self.received if line.startswith(prefix)]

    async def wait_for(self, prefix: str, timeout: float = 60) -> str:
        with trio.fail_after(timeout):
            while not (found := self.lines(prefix)):
                await self._changed.wait()
        return found[0]


class DatabaseGate:
    """A TCP front for the test's PostgreSQL (a Unix socket): closed connections until opened."""

    def __init__(self, socket_path: str) -> None:
        self._socket_path = socket_path
        self.open = False
        self.port = 0

    async def serve(self, *, task_status: trio.TaskStatus[None]) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            if not self.open:
                return  # PostgreSQL "not there yet": the connection drops at once
            upstream = await trio.open_unix_socket(self._socket_path)
            async with upstream, trio.open_nursery() as nursery:
                nursery.start_soon(_pump, client, upstream, nursery.cancel_scope)
                nursery.start_soon(_pump, upstream, client, nursery.cancel_scope)


async def _pump(src: trio.abc.Stream, dst: trio.abc.Stream, scope: trio.CancelScope) -> None:
    try:
        while data := await src.receive_some(65536):
            await dst.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    scope.cancel()


@pytest.fixture
async def notifications(
    nursery: trio.Nursery, tmp_path: Path
) -> AsyncIterator[tuple[str, Notifications]]:
    path = str(tmp_path / "notify.sock")
    with trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind(path)
        received = Notifications(sock)
        nursery.start_soon(received.run)
        yield path, received
        nursery.cancel_scope.cancel()


async def start_chatd(
    repo_root: Path, state_dir: Path, notify_socket: str, *args: str, **env: str
) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "chatd", *args, "serve"],
        cwd=repo_root,
        env=serve_env(
            state_dir, NOTIFY_SOCKET=notify_socket, WATCHDOG_USEC=str(WATCHDOG_USEC), **env
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_ready_watchdog_status_reload_and_stopping(
    notifications: tuple[str, Notifications], state_dir: Path, repo_root: Path, tmp_path: Path
) -> None:
    notify_socket, received = notifications
    config = tmp_path / "config.toml"
    config.write_text('[metrics]\ntoken = "first-token"\n')
    log: list[str] = []
    process = await start_chatd(repo_root, state_dir, notify_socket, "--config", str(config))
    try:
        url = await wait_listening(process, log)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, process, log)
            assert await received.wait_for("READY=1")
            assert f"MAINPID={process.pid}" in received.lines("MAINPID=")
            status = await received.wait_for("STATUS=serving;")
            assert "queue 0 pending" in status
            assert "database ok" in status
            # The watchdog keeps coming from the event loop, at half of WATCHDOG_USEC.
            before = len(received.lines("WATCHDOG=1"))
            await trio.sleep(0.6)
            assert len(received.lines("WATCHDOG=1")) - before >= 3
            # systemctl reload: RELOADING=1, the new token in force, READY=1 again.
            config.write_text('[metrics]\ntoken = "second-token"\n')
            process.send_signal(signal.SIGHUP)
            assert await received.wait_for("RELOADING=1", timeout=10)
            with trio.fail_after(10):
                while len(received.lines("READY=1")) < 2:
                    await trio.sleep(0.02)
            async with httpx.AsyncClient(base_url=url) as client:
                old = await client.get("/metrics", headers={"Authorization": "Bearer first-token"})
                new = await client.get("/metrics", headers={"Authorization": "Bearer second-token"})
            assert (old.status_code, new.status_code) == (401, 200)
            process.send_signal(signal.SIGTERM)
            assert await received.wait_for("STOPPING=1", timeout=10)
            with trio.fail_after(30):
                assert await process.wait() == 0
        states = ("READY=1", "RELOADING=1", "STOPPING=1")
        order = [line for _, line in received.received if line in states]
        assert order == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]
    finally:
        if process.returncode is None:
            process.kill()


async def test_no_ready_while_the_database_is_unreachable_at_start(
    nursery: trio.Nursery,
    notifications: tuple[str, Notifications],
    database_url: str,
    state_dir: Path,
    repo_root: Path,
) -> None:
    notify_socket, received = notifications
    params = conninfo_to_dict(database_url)
    socket_dir = params.get("host") or unquote(urlsplit(database_url).path)
    gate = DatabaseGate(os.path.join(str(socket_dir), ".s.PGSQL.5432"))
    await nursery.start(gate.serve)
    url = f"postgresql://postgres@127.0.0.1:{gate.port}/{params['dbname']}"
    log: list[str] = []
    process = await start_chatd(repo_root, state_dir, notify_socket, DATABASE_URL=url)
    try:
        nursery.start_soon(drain, process, log)
        waiting = await received.wait_for("STATUS=waiting for PostgreSQL", timeout=30)
        assert "127.0.0.1" in waiting or "closed" in waiting or "connect" in waiting
        await trio.sleep(1.0)
        assert not received.lines("READY=1"), "READY before the database answered"
        # The database being away is not a stall: the watchdog keeps coming meanwhile.
        pings = [t for t, line in received.received if line == "WATCHDOG=1"]
        assert len(pings) >= 5
        assert time.monotonic() - pings[-1] < 0.5
        gate.open = True
        assert await received.wait_for("READY=1", timeout=30)
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
