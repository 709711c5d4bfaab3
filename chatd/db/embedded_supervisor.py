"""Keeps the embedded PostgreSQL running for as long as chatd serves (`open_embedded_postgres`).

A postmaster that exits unasked (kill -9, the OOM killer, a crash) is logged with its exit
status and the end of postgres.log, then started again: at once, then with backoff. After
`restart_max` restarts in a row that did not last, the supervisor gives up with
EmbeddedPostgresError, and `chatd serve` exits non-zero (systemd then restarts the service).
A postmaster someone else started on the data directory (`pg_ctl restart`) is adopted: watched
like ours, and stopped when chatd stops.
"""

from __future__ import annotations

import random
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO

import structlog
import trio

from chatd.core.backoff import exponential_backoff
from chatd.db.embedded import (
    Cluster,
    lock_state_dir,
    log_tail,
    prepare,
    run_postgres,
    running_postmaster,
    stop_postmaster,
    wait_exited,
    wait_ready,
)
from chatd.errors import EmbeddedPostgresError

log = structlog.get_logger(__name__)

STABLE_SECONDS = 30.0  # a server that answered this long ends a run of failed restarts
ADOPT_WAIT_SECONDS = 2.0  # after a clean exit, time for `pg_ctl restart` to start its own
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 10.0


@asynccontextmanager
async def open_embedded_postgres(cluster: Cluster, *, restart_max: int = 5) -> AsyncIterator[str]:
    """Run PostgreSQL for the duration of the block, restarting it if it dies; yields its URL.

    Raises EmbeddedPostgresError if it cannot start, or (from inside the block, which is then
    cancelled) once `restart_max` restarts in a row have failed.
    """
    lock = lock_state_dir(cluster.state_dir)
    try:
        await prepare(cluster)
        async with trio.open_nursery() as nursery:
            await nursery.start(EmbeddedSupervisor(cluster, restart_max).run)
            try:
                yield cluster.url()
            finally:
                nursery.cancel_scope.cancel()  # stops the server, last: the pool is closed
    finally:
        lock.close()


@dataclass(frozen=True)
class Run:
    """One life of a postmaster, ours or adopted."""

    pid: int
    started_at: float
    ready_at: float | None  # None: it never answered
    ended_at: float
    returncode: int | None  # None: not our child, so its exit status is not ours to see

    @property
    def lasted(self) -> bool:
        return self.ready_at is not None and self.ended_at - self.ready_at >= STABLE_SECONDS

    @property
    def clean(self) -> bool:
        """It exited as asked (pg_ctl stop/restart: the server may be coming back), or unknown."""
        return self.returncode in (0, None)

    def status(self) -> dict[str, object]:
        code = self.returncode
        if code is None:
            return {"adopted": True}
        if code < 0:
            return {"signal": signal.Signals(-code).name}
        return {"exit_code": code}


class EmbeddedSupervisor:
    """Starts the embedded PostgreSQL and keeps it running until cancelled."""

    def __init__(self, cluster: Cluster, restart_max: int) -> None:
        self._cluster = cluster
        self._restart_max = restart_max
        self.restarts = 0  # restarts so far (each one logged)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """`started()` once PostgreSQL answers; EmbeddedPostgresError if it does not."""
        with self._cluster.log_path.open("ab") as log_file:
            run = await self._run_ours(log_file, on_ready=task_status.started)
            if run.ready_at is None:  # the first start: not retried, the caller says why
                raise EmbeddedPostgresError(
                    f"embedded PostgreSQL did not start; {self._cluster.log_path} ends with:\n"
                    f"{log_tail(self._cluster, 30)}"
                )
            # The restart to come, counted in a row of servers that died soon after starting.
            attempt = 0
            while True:
                attempt = 1 if run.lasted else attempt + 1
                other = await self._other_postmaster(ADOPT_WAIT_SECONDS if run.clean else 0.0)
                if other is not None:
                    run = await self._watch_other(other)
                    continue
                if attempt > self._restart_max:
                    raise self._give_up()
                await self._pause(attempt)
                self.restarts += 1
                run = await self._run_ours(log_file, on_ready=None)

    async def _run_ours(self, log_file: IO[bytes], on_ready: Callable[[], None] | None) -> Run:
        started_at = trio.current_time()
        ready_at = None
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(run_postgres, self._cluster, log_file)
            if await wait_ready(self._cluster, process):
                ready_at = trio.current_time()
                log.info(
                    "embedded_postgres_ready",
                    pid=process.pid,
                    socket_dir=str(self._cluster.socket_dir),
                    restarts=self.restarts,
                )
                if on_ready is not None:
                    on_ready()
                await process.wait()
            else:
                nursery.cancel_scope.cancel()  # one that does not answer in time is stopped
        run = Run(process.pid, started_at, ready_at, trio.current_time(), process.returncode)
        self._log_exit(run)
        return run

    async def _other_postmaster(self, wait: float) -> int | None:
        """A postmaster we did not start, serving our data directory now (or within `wait`)."""
        with trio.move_on_after(wait):
            # Another process's pid file: no event to await, so ask every 50 ms.
            while (pid := running_postmaster(self._cluster)) is None:  # noqa: ASYNC110
                await trio.sleep(0.05)
        return pid

    async def _watch_other(self, pid: int) -> Run:
        """Until an adopted postmaster exits; if chatd stops first, it is stopped too."""
        log.warning(
            "embedded_postgres_adopted",
            pid=pid,
            note="another postmaster (pg_ctl restart?) serves the data directory; chatd watches"
            " it and stops it when chatd stops",
        )
        started_at = trio.current_time()
        try:
            await wait_exited(pid)
        finally:
            with trio.CancelScope(shield=True):
                await stop_postmaster(pid)  # returns at once if it is gone already
        run = Run(pid, started_at, started_at, trio.current_time(), None)
        self._log_exit(run)
        return run

    async def _pause(self, attempt: int) -> None:
        # The first restart is immediate: a killed server should come back at once.
        delay = 0.0
        if attempt > 1:
            delay = exponential_backoff(
                attempt - 1,
                base=BACKOFF_BASE_SECONDS,
                cap=BACKOFF_CAP_SECONDS,
                rand=random.random(),
            )
        log.warning(
            "embedded_postgres_restarting",
            attempt=attempt,
            max_attempts=self._restart_max,
            delay_seconds=round(delay, 2),
        )
        await trio.sleep(delay)

    def _log_exit(self, run: Run) -> None:
        log.warning(
            "embedded_postgres_exited",
            pid=run.pid,
            **run.status(),
            ran_seconds=round(run.ended_at - run.started_at, 2),
            answered=run.ready_at is not None,
            log_tail=log_tail(self._cluster),
        )

    def _give_up(self) -> EmbeddedPostgresError:
        n = self._restart_max
        tail = log_tail(self._cluster, 30)
        log.error("embedded_postgres_gave_up", restarts_failed=n, log_tail=tail)
        return EmbeddedPostgresError(
            f"the embedded PostgreSQL exited and {n} restart(s) in a row failed"
            f" (database.embedded_restart_max = {n}); {self._cluster.log_path} ends with:\n{tail}"
        )
