"""sd_notify: the environment parsers, and datagrams received on real Unix sockets."""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from structlog.testing import capture_logs

from chatd.ops import sd_notify
from chatd.ops.sd_notify import (
    Notifier,
    activation_binds,
    notify_address,
    watchdog_interval,
)

PID = 4242


@asynccontextmanager
async def bound(address: str | bytes) -> AsyncIterator[trio.socket.SocketType]:
    """A datagram socket listening where systemd's would, as NOTIFY_SOCKET names it."""
    with trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        await sock.bind(address)
        yield sock


async def receive(sock: trio.socket.SocketType) -> bytes:
    with trio.fail_after(2):
        return await sock.recv(4096)


def test_notify_address() -> None:
    assert notify_address({}) is None
    assert notify_address({"NOTIFY_SOCKET": ""}) is None
    assert notify_address({"NOTIFY_SOCKET": "/run/systemd/notify"}) == "/run/systemd/notify"
    assert notify_address({"NOTIFY_SOCKET": "@sd-notify/1"}) == b"\0sd-notify/1"
    assert notify_address({"NOTIFY_SOCKET": "vsock:2:1234"}) is None
    assert notify_address({"NOTIFY_SOCKET": "relative/path"}) is None


def test_watchdog_interval_is_half_the_timeout() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, PID) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(PID)}, PID) == 15.0


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"WATCHDOG_USEC": ""},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "soon"},
        {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(PID + 1)},  # our parent's watchdog
        {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "main"},
    ],
)
def test_watchdog_interval_disabled(environ: dict[str, str]) -> None:
    assert watchdog_interval(environ, PID) is None


def test_activation_binds() -> None:
    assert activation_binds({"LISTEN_PID": str(PID), "LISTEN_FDS": "1"}, PID) == ["fd://3"]
    assert activation_binds({"LISTEN_PID": str(PID), "LISTEN_FDS": "2"}, PID) == [
        "fd://3",
        "fd://4",
    ]
    assert activation_binds({}, PID) == []
    assert activation_binds({"LISTEN_PID": str(PID + 1), "LISTEN_FDS": "1"}, PID) == []
    assert activation_binds({"LISTEN_PID": str(PID), "LISTEN_FDS": "0"}, PID) == []
    assert activation_binds({"LISTEN_PID": str(PID), "LISTEN_FDS": "x"}, PID) == []
    assert activation_binds({"LISTEN_FDS": "1"}, PID) == []


async def test_messages_on_a_path_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    async with bound(path) as sock:
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
        assert notifier.enabled
        await notifier.ready()
        assert await receive(sock) == f"READY=1\nMAINPID={os.getpid()}".encode()
        await notifier.status("serving\non 127.0.0.1:8000\r\n")
        assert await receive(sock) == b"STATUS=serving on 127.0.0.1:8000"
        await notifier.stopping()
        assert await receive(sock) == b"STOPPING=1"
        await notifier.watchdog()
        assert await receive(sock) == b"WATCHDOG=1"


async def test_messages_on_an_abstract_socket() -> None:
    name = f"chatd-test-{secrets.token_hex(8)}"
    async with bound(b"\0" + name.encode()) as sock:
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": f"@{name}"})
        await notifier.ready()
        assert await receive(sock) == f"READY=1\nMAINPID={os.getpid()}".encode()


async def test_reloading_carries_the_monotonic_clock(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    async with bound(path) as sock:
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        await Notifier.from_environ({"NOTIFY_SOCKET": path}).reloading()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        first, second = (await receive(sock)).decode().split("\n")
    assert first == "RELOADING=1"
    key, value = second.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


async def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier.from_environ({"WATCHDOG_USEC": "100000"})
    assert not notifier.enabled
    assert notifier.watchdog_period is None
    with capture_logs() as logs, trio.fail_after(1):
        await notifier.ready()
        await notifier.status("x")
        await notifier.stopping()
        await notifier.reloading()
        await notifier.watchdog()
        await notifier.run_watchdog()  # returns: no watchdog
    assert logs == []


async def test_unreachable_socket_is_logged_once_and_never_raised(tmp_path: Path) -> None:
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "missing")})
    with capture_logs() as logs:
        await notifier.ready()
        await notifier.status("still here")
        await notifier.stopping()
    assert [entry["event"] for entry in logs] == ["sd_notify_failed"]
    assert logs[0]["log_level"] == "warning"


async def test_a_full_socket_costs_the_timeout_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sd_notify, "SEND_TIMEOUT_SECONDS", 0.05)
    path = str(tmp_path / "notify")
    async with bound(path):  # bound, never read: a wedged systemd
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
        with capture_logs() as logs, trio.fail_after(2):
            for _ in range(1000):  # the kernel queues a few (net.unix.max_dgram_qlen), then no more
                await notifier.watchdog()
                if logs:
                    break
            await notifier.watchdog()  # times out again: not raised, not logged again
    assert [entry["event"] for entry in logs] == ["sd_notify_failed"]
    assert "took no datagram" in logs[0]["error"]


async def test_unsupported_address_is_reported_and_disabled() -> None:
    with capture_logs() as logs:
        notifier = Notifier.from_environ({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    assert [entry["event"] for entry in logs] == ["sd_notify_address_unsupported"]


async def test_watchdog_pid_of_another_process_disables_the_watchdog(tmp_path: Path) -> None:
    notifier = Notifier.from_environ(
        {
            "NOTIFY_SOCKET": str(tmp_path / "notify"),
            "WATCHDOG_USEC": "100000",
            "WATCHDOG_PID": str(os.getpid() + 1),
        }
    )
    assert notifier.enabled
    assert notifier.watchdog_period is None
    with trio.fail_after(1):
        await notifier.run_watchdog()


async def test_run_watchdog_pings_at_half_the_timeout(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    environ = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": str(os.getpid())}
    notifier = Notifier.from_environ(environ)
    assert notifier.watchdog_period == pytest.approx(0.05)
    pings = 0
    async with bound(path) as sock, trio.open_nursery() as nursery:
        await nursery.start(notifier.run_watchdog)
        with trio.move_on_after(0.25):
            while True:
                assert await sock.recv(4096) == b"WATCHDOG=1"
                pings += 1
        nursery.cancel_scope.cancel()
    assert 3 <= pings <= 7  # one at once, then every 0.05 s
