"""Live connections per client address (WebSockets, SSE streams, waiting long-polls), held to one
limit across every chatd process on the database.

An arrival is counted here first, checked and counted in one step (no await between), then in
PostgreSQL, where admissions per address are serialized (chatd_admit_connection); a refusal by
either is a 429. Ends are counted here at once and subtracted in the database in batches by
`run`, which also sweeps the rows of dead processes and registers this process's counts again
whenever its owner lock is taken anew (after a reconnect its rows may have been swept) or a
database write was lost. Registration waits until no admission is in flight, so it never
overwrites one it did not see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import NoReturn

import structlog
import trio

from chatd.core.ratelimit import ConnectionLimit
from chatd.db.limits import LimitStore
from chatd.db.owner import Owner
from chatd.errors import DatabaseUnavailable, RateLimited

log = structlog.get_logger(__name__)

SWEEP_SECONDS = 2.0  # dead processes' connections stop counting within this (as jobs' rescue)
RETRY_SECONDS = 1.0  # a failed database write is tried again after this
UNSTARTED_SECONDS = 10.0  # an admitted SSE stream whose response never started is released
REFUSED_RETRY_AFTER = 5  # seconds, told to a client refused for too many connections


@dataclass(frozen=True)
class ConnectionStatistics:
    open: int  # counted here now
    refused: int  # arrivals refused, here or by the cluster's count
    swept: int  # rows of dead processes (or empty ones) this process removed
    registrations: int  # times this process wrote all its counts again


class Admission:
    """One admitted connection: `release()` once it ends (idempotent). An admission taken
    before its transport exists (an SSE response not yet sent) is `start()`ed when it does;
    one never started is released after UNSTARTED_SECONDS."""

    def __init__(self, ledger: LiveConnections, address: str, started: bool) -> None:
        self.address = address
        self._ledger = ledger
        self.started = started
        self.released = False
        self.deadline = trio.current_time() + UNSTARTED_SECONDS

    def start(self) -> None:
        self.started = True

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._ledger._ended(self)


class LiveConnections:
    def __init__(self, store: LimitStore, owner: Owner, limit: int) -> None:
        self.limit = limit
        self._store = store
        self._owner = owner
        self._local = ConnectionLimit(limit)
        self._ended_at: dict[str, int] = {}  # ends not yet subtracted in the database
        self._flushing: dict[str, int] = {}  # ends being subtracted right now
        self._flushed = trio.Event()
        self._unstarted: set[Admission] = set()
        self._admitting = 0  # admissions whose database statement is in flight
        self._settled = trio.Event()  # set when _admitting drops to 0 while registration waits
        self._registering = False
        self._registered = trio.Event()
        self._registered.set()
        self._register_due = False
        self._wake = trio.Event()
        self._refused = self._swept = self._registrations = 0
        owner.on_held(self.register_soon)

    def statistics(self) -> ConnectionStatistics:
        return ConnectionStatistics(
            len(self._local), self._refused, self._swept, self._registrations
        )

    def __len__(self) -> int:
        return len(self._local)

    @asynccontextmanager
    async def hold(self, address: str) -> AsyncIterator[Admission]:
        """Admit a connection for the duration of the block (429 if the address is full)."""
        admission = await self.admit(address, started=True)
        try:
            yield admission
        finally:
            admission.release()

    async def admit(self, address: str, *, started: bool = False) -> Admission:
        """Count a connection from `address`; RateLimited if it already holds `limit` here or in
        the cluster; DatabaseUnavailable if the cluster's count cannot be asked."""
        while self._registering or address in self._flushing:
            # Registration waits for admissions; an admission waits for the ends of its address
            # on their way to the database (a place freed here is then free there too).
            await (self._registered if self._registering else self._flushed).wait()
        # From here to the database's answer, registration waits for us: no checkpoint before
        # `_admitting` is raised, so it cannot read our local count without our row.
        if not self._local.try_acquire(address):
            self._refuse(address)
        self._admitting += 1
        released = self._ended_at.pop(address, 0)
        try:
            total = await self._store.admit_connection(
                self._owner.token, address, self.limit, released
            )
        except BaseException:
            self._local.release(address)
            self.register_soon()  # the outcome is unknown: write what is true
            raise
        finally:
            self._admitting -= 1
            if not self._admitting:
                self._settled.set()
        if total is None:
            self._local.release(address)
            self._refuse(address)
        admission = Admission(self, address, started)
        if not started:
            self._unstarted.add(admission)
        return admission

    def _refuse(self, address: str) -> NoReturn:
        self._refused += 1
        raise RateLimited(
            f"at most {self.limit} live connections per address",
            code="too_many_connections",
            retry_after=REFUSED_RETRY_AFTER,
        )

    def _ended(self, admission: Admission) -> None:
        self._unstarted.discard(admission)
        self._local.release(admission.address)
        self._ended_at[admission.address] = self._ended_at.get(admission.address, 0) + 1
        self._wake.set()

    def register_soon(self) -> None:
        """Write all of this process's counts again (the owner lock was taken anew, or a
        write's outcome is unknown)."""
        self._register_due = True
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Subtract ended connections, sweep dead processes' rows, register when due."""
        task_status.started()
        next_sweep = trio.current_time()
        while True:
            with trio.move_on_at(min(next_sweep, self._next_deadline())):
                await self._wake.wait()
            self._wake = trio.Event()
            self._expire_unstarted()
            try:
                if self._register_due:
                    await self._register()
                elif self._ended_at:
                    await self._flush_ends()
                if trio.current_time() >= next_sweep:
                    next_sweep = trio.current_time() + SWEEP_SECONDS
                    if self._owner.held:  # else we cannot tell the dead from ourselves
                        self._swept += await self._store.sweep_connections(self._owner.token)
            except DatabaseUnavailable as exc:
                log.warning("live_connections_write_failed", error=str(exc))
                await trio.sleep(RETRY_SECONDS)
                self._wake.set()

    async def _flush_ends(self) -> None:
        self._flushing, self._ended_at = self._ended_at, {}
        try:
            await self._store.release_connections(self._owner.token, self._flushing)
        except BaseException:
            self._register_due = True  # lost or unknown: write what is true instead
            raise
        finally:
            self._flushing = {}
            self._flushed.set()
            self._flushed = trio.Event()

    async def _register(self) -> None:
        self._registering = True
        self._registered = trio.Event()
        try:
            while self._admitting:
                self._settled = trio.Event()
                await self._settled.wait()
            self._register_due = False
            self._ended_at = {}  # the counts below already leave them out
            try:
                await self._store.register_connections(self._owner.token, self._local.counts())
            except BaseException:
                self._register_due = True
                raise
            self._registrations += 1
        finally:
            self._registering = False
            self._registered.set()

    def _next_deadline(self) -> float:
        return min((a.deadline for a in self._unstarted), default=float("inf"))

    def _expire_unstarted(self) -> None:
        now = trio.current_time()
        for admission in [a for a in self._unstarted if a.deadline <= now and not a.started]:
            log.warning("live_connection_never_started", address=admission.address)
            admission.release()
        self._unstarted = {a for a in self._unstarted if not a.started}
