"""systemd's side of the process: readiness, status and watchdog pings (sd_notify), socket activation.

The environment systemd sets is read by pure functions; `Notifier` sends the datagrams from the
Trio loop. Without systemd (no NOTIFY_SOCKET) every method returns at once, and a failing send
is logged once and never raised: a missing or broken systemd must never stop chatd.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog
import trio

log = structlog.get_logger(__name__)

SD_LISTEN_FDS_START = 3  # the first file descriptor systemd passes (sd_listen_fds(3))
SEND_TIMEOUT_SECONDS = 1.0  # a datagram to PID 1 is queued at once unless systemd is wedged


def notify_address(environ: Mapping[str, str]) -> str | bytes | None:
    """Where to send notifications: NOTIFY_SOCKET as a path, or as an abstract socket name.

    "@name" is Linux's abstract namespace (b"\\0name"). None when unset, and for addresses this
    client does not speak: "vsock:CID:PORT" (systemd ≥ 254 in a VM; AF_VSOCK is outside the
    unit's RestrictAddressFamilies) and relative paths, which systemd never sets.
    """
    value = environ.get("NOTIFY_SOCKET", "")
    if value.startswith("@"):
        return b"\0" + os.fsencode(value[1:])
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None if not asked of `pid`.

    WATCHDOG_PID, when set, names the process the watchdog is for: a child that inherited the
    environment must not ping in its parent's name.
    """
    try:
        timeout_usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if timeout_usec <= 0:
        return None
    if environ.get("WATCHDOG_PID", "") not in ("", str(pid)):
        return None
    return timeout_usec / 1_000_000 / 2


def activation_binds(environ: Mapping[str, str], pid: int) -> list[str]:
    """hypercorn binds ("fd://3", ...) for the sockets systemd passed to `pid`, else []."""
    try:
        if int(environ.get("LISTEN_PID", "")) != pid:
            return []
        count = int(environ.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    return [f"fd://{fd}" for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count)]


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """Sends sd_notify messages to `address` (None: does nothing)."""

    def __init__(
        self, address: str | bytes | None, *, watchdog_period: float | None = None
    ) -> None:
        self._address = address
        self._watchdog_period = watchdog_period if address is not None else None
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        """The notifier systemd asked for; the environment is read, never changed."""
        address = notify_address(environ)
        if address is None and environ.get("NOTIFY_SOCKET"):
            log.warning("sd_notify_address_unsupported", notify_socket=environ["NOTIFY_SOCKET"])
        return cls(address, watchdog_period=watchdog_interval(environ, os.getpid()))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_period(self) -> float | None:
        """Seconds between watchdog pings, or None when systemd runs no watchdog for us."""
        return self._watchdog_period

    async def ready(self) -> None:
        """Start-up is done (listening, migrated); also after a reload has finished."""
        await self._send(f"READY=1\nMAINPID={os.getpid()}")

    async def status(self, text: str) -> None:
        """The line `systemctl status` shows; newlines would end the field, so they go."""
        await self._send(f"STATUS={_one_line(text)}")

    async def stopping(self) -> None:
        await self._send("STOPPING=1")

    async def reloading(self) -> None:
        """A reload began; send ready() when it is done. systemd ≥ 253 wants MONOTONIC_USEC."""
        await self._send(f"RELOADING=1\nMONOTONIC_USEC={_monotonic_usec()}")

    async def watchdog(self) -> None:
        await self._send("WATCHDOG=1")

    async def run_watchdog(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Ping the watchdog forever from this Trio loop; returns at once if there is none.

        The pings come from the event loop itself, so a loop that stalls stops them and systemd
        restarts chatd after WatchdogSec.
        """
        task_status.started()
        period = self._watchdog_period
        if period is None:
            return
        while True:
            await self.watchdog()
            await trio.sleep(period)

    async def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            with (
                trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
                trio.move_on_after(SEND_TIMEOUT_SECONDS) as scope,
            ):
                await sock.sendto(message.encode(), self._address)
        except OSError as exc:
            self._warn(message, str(exc))
            return
        if scope.cancelled_caught:
            self._warn(message, f"the notify socket took no datagram in {SEND_TIMEOUT_SECONDS} s")

    def _warn(self, message: str, error: str) -> None:
        if self._warned:
            return
        self._warned = True
        log.warning(
            "sd_notify_failed",
            address=repr(self._address),
            sent=message.split("\n", 1)[0],
            error=error,
            note="further sd_notify failures are not logged",
        )
