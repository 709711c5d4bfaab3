"""The dedicated LISTEN connection: notifications in, reconnecting with backoff when it drops.

NOTIFY is only a hint (RELIABILITY.md #9): notifications sent while the connection is down are
lost, so after every (re)connect `on_connect` fires and listeners re-read the database at once.
Handlers are plain callables that must not block (e.g. `send_nowait`, `Event.set`).

The connection also holds this process's owner lock (chatd/db/owner.py), taken again after every
reconnect. While it is not held, another process may rescue the jobs we are delivering: our
later settle is fenced on the lease and changes nothing, the rescuer delivers again (n8n sees
the same webhook-id twice), so at-least-once holds; and our live connections may be swept from
the per-address counts until the lock is back (then they are registered again).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import structlog
import trio
from psycopg import sql

from chatd.core.backoff import exponential_backoff
from chatd.db.bridge import TrioConnection
from chatd.db.owner import OWNER_LOCK_NAMESPACE, Owner
from chatd.db.queries import query
from chatd.errors import DatabaseUnavailable

log = structlog.get_logger(__name__)

NotifyHandler = Callable[[str, str], None]  # (channel, payload)

OWNER_LOCK_RETRY_SECONDS = 1.0  # while our old backend still holds the owner lock


class Listener:
    def __init__(
        self,
        conninfo: str,
        channels: Sequence[str],
        on_notify: NotifyHandler,
        on_connect: Callable[[], None] = lambda: None,
        *,
        connect_timeout: float = 5.0,
        backoff_cap: float = 5.0,
        owner: Owner | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._channels = list(channels)
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._connect_timeout = connect_timeout
        self._backoff_cap = backoff_cap
        self._owner = owner
        self.reconnects = 0
        self.connected = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen forever; `started()` once the first LISTEN is active."""
        failures = 0
        ever_connected = False  # not self.connected: that is cleared as soon as a connection drops
        while True:
            try:
                conn: TrioConnection[Any] = await TrioConnection.connect_trio(
                    self._conninfo, connect_timeout=self._connect_timeout
                )
            except DatabaseUnavailable as exc:
                failures += 1
                delay = exponential_backoff(
                    failures, base=0.1, cap=self._backoff_cap, rand=random.random()
                )
                log.warning("listen_connect_failed", error=str(exc), retry_in_seconds=delay)
                await trio.sleep(delay)
                continue
            try:
                await self._take_owner_lock(conn)  # first: LISTEN stays the last statement seen
                await self._listen(conn)
                if ever_connected:
                    self.reconnects += 1
                ever_connected = True
                failures = 0
                self.connected = True
                log.info("listen_connected", channels=self._channels)
                self._on_connect()
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                await self._pump(conn)
            except psycopg.OperationalError as exc:
                log.warning("listen_connection_lost", error=str(exc))
            finally:
                self.connected = False
                if self._owner is not None:
                    self._owner.lost()
                conn.pgconn.finish()

    async def _listen(self, conn: TrioConnection[Any]) -> None:
        for channel in self._channels:
            await conn.execute(sql.SQL(query("listen")).format(channel=sql.Identifier(channel)))

    async def _take_owner_lock(self, conn: TrioConnection[Any]) -> None:
        owner = self._owner
        if owner is None or owner.held:
            return
        params = {"namespace": OWNER_LOCK_NAMESPACE, "token": owner.token}
        row = await (await conn.execute(query("take_owner_lock"), params)).fetchone()
        if row is not None and row[0]:
            log.info("owner_lock_taken", token=owner.token)
            owner.taken()
        else:
            log.warning("owner_lock_busy", token=owner.token, retry_in_seconds=1)

    async def _pump(self, conn: TrioConnection[Any]) -> None:
        pgconn = conn.pgconn
        while True:
            waiting_for_lock = self._owner is not None and not self._owner.held
            with trio.move_on_after(
                OWNER_LOCK_RETRY_SECONDS if waiting_for_lock else math.inf
            ) as idle:
                await trio.lowlevel.wait_readable(pgconn.socket)
            if idle.cancelled_caught:  # nothing to read: a query cannot swallow a notification
                await self._take_owner_lock(conn)
                continue
            pgconn.consume_input()  # raises OperationalError once the server is gone
            while (notify := pgconn.notifies()) is not None:
                self._on_notify(notify.relname.decode(), notify.extra.decode())
