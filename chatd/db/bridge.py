"""psycopg's AsyncConnection driven by Trio's own I/O waits: no asyncio loop, no thread per query.

psycopg implements the protocol as generators that yield "wait for read/write on this fd"; its
AsyncConnection only hands them to asyncio in `wait()` and `connect()`. We override exactly those
(and swap the asyncio lock for a trio.Lock), so cursors, transactions, adapters and row factories
work unchanged. Relies on psycopg 3.2/3.3 internals: `_connect_gen`, `_cancel_gen`, `wait()`.

Cancellation: a Trio cancel that lands mid-query leaves the protocol half-way. We then cancel the
query server-side and drain the generator under a shield for a short budget, or close the
connection; either way the pool never gets back a connection in an unknown state.
"""

from __future__ import annotations

import re
import select
from typing import Any, Self

import psycopg
import structlog
import trio
from psycopg import pq
from psycopg.abc import RV, PQGen, PQGenConn
from psycopg.rows import AsyncRowFactory, Row, tuple_row
from psycopg.waiting import READY_R, READY_RW, READY_W, WAIT_R, WAIT_RW, WAIT_W

from chatd.errors import DatabaseMisconfigured, DatabaseUnavailable

log = structlog.get_logger(__name__)

# How long a cancelled query may take to acknowledge the server-side cancel before we close it.
CANCEL_BUDGET_SECONDS = 2.0


async def _wait_fd(fileno: int, state: int) -> int:
    """Wait until `fileno` is ready for `state` (WAIT_R/W/RW); return the READY_* flags."""
    if state == WAIT_R:
        await trio.lowlevel.wait_readable(fileno)
        return READY_R
    if state == WAIT_W:
        await trio.lowlevel.wait_writable(fileno)
        return READY_W
    if state != WAIT_RW:
        raise psycopg.InternalError(f"bad poll status: {state}")
    # Both directions (only while libpq's send buffer is full): poll first, race only if needed.
    ready = _poll_now(fileno)
    if ready:
        await trio.lowlevel.checkpoint()
        return ready
    result: int = READY_RW
    async with trio.open_nursery() as nursery:

        async def one(waiter: Any, flag: int) -> None:
            nonlocal result
            await waiter(fileno)
            result = flag
            nursery.cancel_scope.cancel()

        nursery.start_soon(one, trio.lowlevel.wait_readable, READY_R)
        nursery.start_soon(one, trio.lowlevel.wait_writable, READY_W)
    return result


def _poll_now(fileno: int) -> int:
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLOUT)
    ready = 0
    for _, events in poller.poll(0):
        if events & (select.POLLIN | select.POLLERR | select.POLLHUP):
            ready |= READY_R
        if events & select.POLLOUT:
            ready |= READY_W
    return ready


async def wait_gen(gen: PQGen[RV], fileno: int) -> RV:
    """Run a psycopg protocol generator on a fixed fd to completion."""
    try:
        state = next(gen)
        while True:
            state = gen.send(await _wait_fd(fileno, state))
    except StopIteration as stop:
        result: RV = stop.value
        return result
    except OSError as exc:
        raise psycopg.OperationalError("connection socket closed") from exc


async def wait_conn_gen(gen: PQGenConn[RV]) -> RV:
    """Run a psycopg connection generator (whose fd may change) to completion."""
    try:
        fileno, state = next(gen)
        while True:
            fileno, state = gen.send(await _wait_fd(fileno, state))
    except StopIteration as stop:
        result: RV = stop.value
        return result


class TrioConnection(psycopg.AsyncConnection[Row]):
    """An AsyncConnection whose waits are Trio's. Use `connect_trio()` to open one."""

    def __init__(
        self,
        pgconn: pq.abc.PGconn,
        row_factory: AsyncRowFactory[Row] = tuple_row,  # type: ignore[assignment]
    ) -> None:
        super().__init__(pgconn, row_factory)
        # psycopg awaits `async with self.lock`; asyncio.Lock would need a running asyncio loop.
        self.lock = _ConnectionLock()  # type: ignore[assignment]

    @classmethod
    async def connect_trio(
        cls, conninfo: str, *, connect_timeout: float, autocommit: bool = True
    ) -> Self:
        """Open a connection or raise DatabaseUnavailable after `connect_timeout` seconds."""
        try:
            with trio.fail_after(connect_timeout):
                conn: Self = await wait_conn_gen(cls._connect_gen(conninfo))
        except trio.TooSlowError:
            raise DatabaseUnavailable(
                f"connecting to PostgreSQL timed out after {connect_timeout}s"
            ) from None
        except psycopg.Error as exc:
            raise connect_error(exc) from exc
        conn._autocommit = autocommit
        return conn

    # psycopg's signature (ASYNC109): our deadlines are trio scopes, so `timeout` is unused.
    async def wait(
        self,
        gen: PQGen[RV],
        interval: float = 0.0,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> RV:
        try:
            return await wait_gen(gen, self.pgconn.socket)
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                await self._recover_from_cancel(gen)
            raise

    async def _recover_from_cancel(self, gen: PQGen[Any]) -> None:
        """Leave the connection idle (query cancelled server-side, results drained) or closed."""
        if self.pgconn.transaction_status != pq.TransactionStatus.ACTIVE:
            return
        with trio.move_on_after(CANCEL_BUDGET_SECONDS) as scope:
            try:
                await wait_conn_gen(self._cancel_gen())
                await wait_gen(gen, self.pgconn.socket)
            except psycopg.errors.QueryCanceled:
                pass  # the expected outcome of our cancel
            except (psycopg.Error, OSError) as exc:
                log.warning("db_cancel_failed", error=_first_line(exc))
                self.pgconn.finish()
                return
        if scope.cancelled_caught or self.pgconn.transaction_status == pq.TransactionStatus.ACTIVE:
            log.warning("db_cancel_timed_out")
            self.pgconn.finish()

    def is_idle(self) -> bool:
        """Open, healthy as far as libpq knows, and outside any transaction or query."""
        return (
            not self.closed
            and self.pgconn.status == pq.ConnStatus.OK
            and self.pgconn.transaction_status == pq.TransactionStatus.IDLE
        )

    def is_usable(self) -> bool:
        """True if idle on a live socket: nothing unexpected waiting to be read."""
        if not self.is_idle():
            return False
        # An idle connection has nothing to say unless the server closed it (or a NOTIFY). A
        # server that shut down sends a FATAL message and then EOF; one read consumes only the
        # message (libpq hands it to the notice processor), the next one sees the EOF: read
        # until the socket is quiet, and give up on one that keeps talking.
        for _ in range(3):
            if not _poll_now(self.pgconn.socket) & READY_R:
                return True
            try:
                self.pgconn.consume_input()
            except psycopg.OperationalError:
                return False
            if self.pgconn.status != pq.ConnStatus.OK:
                return False
        return False


class _ConnectionLock:
    """trio.Lock with asyncio.Lock's semantics: taking it uncontended is not a checkpoint.

    psycopg's cleanup paths (a transaction block's ROLLBACK on the way out) take the lock first.
    Inside a cancelled scope a checkpointing acquire would raise before the ROLLBACK is sent,
    leaving the server INERROR and psycopg's transaction bookkeeping half-unwound for good.
    """

    def __init__(self) -> None:
        self._lock = trio.Lock()

    async def __aenter__(self) -> None:
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# Refusals that waiting cannot fix, by the server's FATAL message: at connect libpq keeps only
# the text, so psycopg's `sqlstate` is None there (28P01, 28000, 3D000, 42501 in the server log).
# Anything else (refused, starting up, too many clients, a timeout) is worth waiting for.
_MISCONFIGURED = (
    (r"authentication failed", "fix the user or password in database.url"),
    (r"no password supplied", "database.url needs a password: postgresql://user:password@..."),
    (r"no pg_hba\.conf entry", "allow this host and user in PostgreSQL's pg_hba.conf"),
    (r'role ".*" does not exist', "create the role (createuser), or fix the user in database.url"),
    (r'database ".*" does not exist', "create the database (createdb), or fix database.url"),
    (r"is not permitted to log in", "let the role log in (ALTER ROLE ... LOGIN)"),
    (r"permission denied for database", "GRANT CONNECT on the database to the user"),
)


def connect_error(exc: psycopg.Error) -> DatabaseUnavailable:
    """A failed connect: DatabaseMisconfigured if PostgreSQL refused us for good."""
    first = _first_line(exc)
    # "connection failed: connection to server ... failed: FATAL:  role "x" does not exist"
    reason = re.split(r"failed: (?:FATAL: |fe_sendauth: )", first)[-1].strip()
    for pattern, hint in _MISCONFIGURED:
        if re.search(pattern, reason):
            return DatabaseMisconfigured(
                f"PostgreSQL refuses chatd: {reason}",
                f"{hint} (DATABASE_URL); waiting will not help",
            )
    return DatabaseUnavailable(f"cannot connect to PostgreSQL: {first}")


def translate(exc: psycopg.Error) -> DatabaseUnavailable:
    """The seam's translation of connection-level psycopg errors."""
    return DatabaseUnavailable(f"database error: {_first_line(exc)}")
