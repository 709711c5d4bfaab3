"""A Trio connection pool: bounded, health-checked on checkout, reconnecting with backoff.

Connections go back to the pool only when idle and healthy; one left mid-transaction is rolled
back (shielded, with a deadline), one left mid-query or broken is closed. Connection-level psycopg
errors raised inside `connection()` surface as DatabaseUnavailable.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
import trio
from psycopg import pq
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from chatd.core.backoff import exponential_backoff
from chatd.db.bridge import TrioConnection, translate
from chatd.errors import ConfigError, DatabaseMisconfigured, DatabaseUnavailable

log = structlog.get_logger(__name__)

Connection = TrioConnection[dict[str, Any]]

ROLLBACK_BUDGET_SECONDS = 2.0


@dataclass(frozen=True)
class PoolStatistics:
    size: int
    idle: int
    in_use: int
    max_size: int


@dataclass(frozen=True)
class PoolConfig:
    url: str
    min_size: int = 2
    max_size: int = 10
    connect_timeout: float = 5.0
    acquire_timeout: float = 5.0
    statement_timeout_ms: int = 15000
    idle_in_transaction_timeout_ms: int = 30000
    application_name: str = "chatd"

    def conninfo(self) -> str:
        options = (
            f"-c statement_timeout={self.statement_timeout_ms}"
            f" -c idle_in_transaction_session_timeout={self.idle_in_transaction_timeout_ms}"
        )
        try:
            return make_conninfo(
                self.url,
                options=options,
                application_name=self.application_name,
                keepalives=1,
                keepalives_idle=30,
                keepalives_interval=10,
                keepalives_count=3,
            )
        except psycopg.ProgrammingError:  # psycopg's reason quotes the URL, password and all
            raise ConfigError(
                "database.url (DATABASE_URL) is not a PostgreSQL URL; write it as"
                " postgresql://user:password@host:5432/dbname"
            ) from None


class Pool:
    """Hands out autocommit connections returning dict rows; use `open_pool()`."""

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self._conninfo = config.conninfo()
        self._idle: list[Connection] = []
        self._slots = trio.Semaphore(config.max_size)
        self._open = 0  # connections that exist, idle or in use
        self._closed = False

    def statistics(self) -> PoolStatistics:
        in_use = self.config.max_size - self._slots.value
        return PoolStatistics(self._open, len(self._idle), in_use, self.config.max_size)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """Borrow a healthy connection; it is cleaned up or discarded on the way back."""
        try:
            self._slots.acquire_nowait()  # the usual case: a slot is free, no timer needed
        except trio.WouldBlock:
            with trio.move_on_after(self.config.acquire_timeout) as scope:
                await self._slots.acquire()
            if scope.cancelled_caught:
                raise DatabaseUnavailable(
                    f"no database connection free within {self.config.acquire_timeout}s"
                ) from None
        try:
            conn = await self._checkout()
            try:
                yield conn
            except psycopg.Error as exc:
                if _connection_level(conn, exc):
                    raise translate(exc) from exc
                raise
            finally:
                await self._checkin(conn)  # shields itself where it has to wait
        finally:
            self._slots.release()

    async def _checkout(self) -> Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.is_usable():
                return conn
            self._discard(conn)
        return await self._connect_with_retry(trio.current_time() + self.config.acquire_timeout)

    async def _connect_with_retry(self, deadline: float) -> Connection:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._connect()
            except DatabaseMisconfigured:
                raise  # waiting will not fix it
            except DatabaseUnavailable:
                delay = exponential_backoff(attempt, base=0.05, cap=1.0, rand=random.random())
                if trio.current_time() + delay >= deadline:
                    raise
                log.warning("db_connect_retry", attempt=attempt, delay_seconds=round(delay, 3))
                await trio.sleep(delay)

    async def _connect(self) -> Connection:
        conn: Connection = await TrioConnection.connect_trio(
            self._conninfo, connect_timeout=self.config.connect_timeout
        )
        conn.row_factory = dict_row
        self._open += 1
        return conn

    async def _checkin(self, conn: Connection) -> None:
        status = conn.pgconn.transaction_status
        if not conn.closed and status in (
            pq.TransactionStatus.INTRANS,
            pq.TransactionStatus.INERROR,
        ):
            with trio.CancelScope(shield=True), trio.move_on_after(ROLLBACK_BUDGET_SECONDS):
                try:
                    await conn.rollback()
                except psycopg.Error as exc:
                    log.warning("db_rollback_on_checkin_failed", error=str(exc))
        # Idle is enough here; whether the server is still there is asked at the next checkout.
        if not self._closed and conn.is_idle() and len(self._idle) < self.config.max_size:
            self._idle.append(conn)
        else:
            self._discard(conn)

    def _discard(self, conn: Connection) -> None:
        self._open -= 1
        conn.pgconn.finish()

    async def fill(self) -> None:
        """Open connections up to min_size (raises DatabaseUnavailable if the database is down)."""
        while self._open < self.config.min_size:
            self._idle.append(await self._connect())

    def close(self) -> None:
        """Close idle connections now; ones still borrowed are closed when they come back."""
        self._closed = True
        for conn in self._idle:
            conn.pgconn.finish()
        self._open -= len(self._idle)
        self._idle.clear()


def _connection_level(conn: Connection, exc: psycopg.Error) -> bool:
    """Connection-level: an OperationalError (timeouts included: QueryCanceled is one, and a 503
    suits it), an InterfaceError, or any error after which the connection is closed, whatever
    its class (the FATAL idle-in-transaction timeout is an InternalError)."""
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) or conn.closed:
        return True
    return conn.pgconn.status != pq.ConnStatus.OK


@asynccontextmanager
async def open_pool(config: PoolConfig, *, fill: bool = True) -> AsyncIterator[Pool]:
    """A pool that lives for the block; idle connections are closed on the way out."""
    pool = Pool(config)
    try:
        if fill:
            await pool.fill()
        yield pool
    finally:
        pool.close()
