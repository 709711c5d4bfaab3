"""SessionRegistry: spawns one actor task per live session on demand, and supervises them.

Each actor owns a bounded mailbox. An actor that crashes is logged, counted and restarted with
backoff on the same mailbox (queued commands survive; the command that crashed it is answered
with a 503), without disturbing its neighbours. An actor idle past its timeout stops and is
forgotten; the next command for that session spawns a fresh one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import structlog
import trio

from chatd.actors.handle import ActorGone, ActorHandle, Reply

log = structlog.get_logger(__name__)

C = TypeVar("C")
T = TypeVar("T")


class Actor(Protocol):
    async def run(self) -> None: ...


@dataclass
class _Entry(Generic[C]):
    handle: ActorHandle[C]
    send: trio.MemorySendChannel[C]
    receive: trio.MemoryReceiveChannel[C]


@dataclass(frozen=True)
class RegistryStatistics:
    live_actors: int
    restarts: int


class SessionRegistry(Generic[C]):
    def __init__(
        self,
        spawn: Callable[[str, trio.MemoryReceiveChannel[C]], Actor],
        *,
        mailbox_size: int,
        call_timeout: float,
        restart_backoff_max: float,
    ) -> None:
        self._spawn = spawn
        self._mailbox_size = mailbox_size
        self._call_timeout = call_timeout
        self._backoff_max = restart_backoff_max
        self._actors: dict[str, _Entry[C]] = {}
        self._nursery: trio.Nursery | None = None
        self._restarts = 0

    def statistics(self) -> RegistryStatistics:
        return RegistryStatistics(len(self._actors), self._restarts)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The nursery every actor lives in; serve until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def handle(self, session_id: str) -> ActorHandle[C]:
        """The session's actor, spawned if it is not running."""
        entry = self._actors.get(session_id)
        if entry is None:
            if self._nursery is None:
                raise RuntimeError("SessionRegistry.run() is not running")
            send, receive = trio.open_memory_channel[C](self._mailbox_size)
            entry = _Entry(ActorHandle(send, self._call_timeout), send, receive)
            self._actors[session_id] = entry
            self._nursery.start_soon(self._supervise, session_id, entry)
        return entry.handle

    async def call(self, session_id: str, make: Callable[[Reply[T]], C]) -> T:
        try:
            return await self.handle(session_id).call(make)
        except ActorGone:
            # It stopped (idle) between lookup and send: the next lookup spawns a fresh one.
            return await self.handle(session_id).call(make)

    async def _supervise(self, session_id: str, entry: _Entry[C]) -> None:
        crashes = 0
        while True:
            actor = self._spawn(session_id, entry.receive)
            try:
                await actor.run()
            except Exception:
                crashes += 1
                self._restarts += 1
                delay = min(self._backoff_max, 0.01 * 2**crashes)
                log.exception("actor_crashed", session_id=session_id, restart_in_seconds=delay)
                await trio.sleep(delay)
                continue
            # Idle stop. No checkpoint between this check and the removal, so no command can slip
            # into a mailbox nobody reads.
            if entry.receive.statistics().current_buffer_used:
                continue
            del self._actors[session_id]
            entry.send.close()
            entry.receive.close()
            return
