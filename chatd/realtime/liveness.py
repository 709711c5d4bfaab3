"""One timer for every live WebSocket: heartbeats that are due, peers gone silent, and frames
the peer's socket would not take.

A deadline per wait (a cancel scope registered with Trio around every frame read and every
idle write) costs more than the frames themselves once thousands of connections sit idle, and
every deadline set or cleared touches Trio's deadline heap. Instead each connection records when
it last sent and received a frame, and one task looks at all of them every tick (a fifth of the
heartbeat interval, at most a second): ~1 ms per 10,000 connections.
"""

from __future__ import annotations

from typing import Protocol

import trio

# A frame the peer's socket cannot take within this ends the connection (a peer that stopped
# reading: the frame must not be cut, see routes_ws._send_text, so its send is cancelled whole).
SEND_TIMEOUT = 10.0


class Watched(Protocol):
    last_sent: float  # trio.current_time() of the last frame out, and in
    last_received: float

    @property
    def sending_since(self) -> float | None:
        """When the oldest send still in progress began (None: none is)."""

    def stalled(self) -> None:
        """A send has taken SEND_TIMEOUT: give up on the peer."""

    def heartbeat_due(self) -> None:
        """Nothing was sent for an interval: send a heartbeat."""

    def silent(self) -> None:
        """Nothing was received for two intervals: the peer is gone."""


class Liveness:
    def __init__(self, interval: float, send_timeout: float = SEND_TIMEOUT) -> None:
        self.interval = interval
        self.send_timeout = send_timeout
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
            since = connection.sending_since
            if since is not None and now - since >= self.send_timeout:
                connection.stalled()
            if now - connection.last_received >= 2 * self.interval:
                connection.silent()
            elif now - connection.last_sent >= self.interval:
                connection.heartbeat_due()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self.tick)
            self.check(trio.current_time())
