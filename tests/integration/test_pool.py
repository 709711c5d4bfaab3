"""The pool against a real server: bounds, timeouts, session settings, clean check-in."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import trio
from psycopg import pq

from chatd.db.pool import PoolConfig, open_pool
from chatd.errors import DatabaseUnavailable


async def scalar(conn: Any, sql: Any, params: Any = None) -> Any:
    row = await (await conn.execute(sql, params)).fetchone()
    assert row is not None
    return next(iter(row.values()))


async def backends(url: str, application_name: str) -> int:
    """Connections to this test's database opened by pools named `application_name`."""
    async with (
        open_pool(PoolConfig(url, min_size=1, max_size=1, application_name="monitor")) as monitor,
        monitor.connection() as conn,
    ):
        return int(
            await scalar(
                conn,
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                [application_name],
            )
        )


async def test_open_pool_opens_min_size_connections(database_url: str) -> None:
    config = PoolConfig(database_url, min_size=3, max_size=5, application_name="chatd_min")
    async with open_pool(config) as pool:
        stats = pool.statistics()
        assert (stats.size, stats.idle, stats.in_use, stats.max_size) == (3, 3, 0, 5)
        assert await backends(database_url, "chatd_min") == 3
    assert pool.statistics().size == 0
    # Backends exit just after their client hangs up: give the server a moment to notice.
    with trio.fail_after(5):
        while await backends(database_url, "chatd_min"):
            await trio.sleep(0.02)


async def test_acquire_timeout_when_the_only_connection_is_held(database_url: str) -> None:
    config = PoolConfig(database_url, min_size=1, max_size=1, acquire_timeout=0.5)
    async with open_pool(config) as pool, pool.connection() as held:
        start = trio.current_time()
        with trio.fail_after(5), pytest.raises(DatabaseUnavailable, match="no database connection"):
            async with pool.connection():
                pytest.fail("a second connection was handed out")  # pragma: no cover
        assert 0.45 <= trio.current_time() - start < 1.5
        assert await scalar(held, "SELECT 1") == 1
        assert pool.statistics().in_use == 1


async def test_connection_left_in_transaction_is_rolled_back(database_url: str) -> None:
    async with open_pool(PoolConfig(database_url, min_size=1, max_size=1)) as pool:
        async with pool.connection() as conn:
            await conn.execute("CREATE TABLE pool_leftover (v int)")
            pid = await scalar(conn, "SELECT pg_backend_pid()")
        async with pool.connection() as conn:
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO pool_leftover VALUES (1)")
            assert conn.pgconn.transaction_status == pq.TransactionStatus.INTRANS
        async with pool.connection() as conn:
            assert await scalar(conn, "SELECT pg_backend_pid()") == pid  # the same connection
            assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
            assert await scalar(conn, "SELECT count(*) FROM pool_leftover") == 0

        # Also a failed transaction (INERROR), with the error swallowed inside the block.
        async with pool.connection() as conn:
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO pool_leftover VALUES (2)")
            with pytest.raises(psycopg.errors.DivisionByZero):
                await conn.execute("SELECT 1 / 0")
            assert conn.pgconn.transaction_status == pq.TransactionStatus.INERROR
        async with pool.connection() as conn:
            assert await scalar(conn, "SELECT pg_backend_pid()") == pid
            assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
            assert await scalar(conn, "SELECT count(*) FROM pool_leftover") == 0
        assert pool.statistics().size == 1


async def test_statement_timeout_is_applied(database_url: str) -> None:
    config = PoolConfig(database_url, min_size=1, max_size=1, statement_timeout_ms=200)
    async with open_pool(config) as pool:
        async with pool.connection() as conn:
            assert await scalar(conn, "SHOW statement_timeout") == "200ms"
            start = trio.current_time()
            # A statement timeout is the query's failure, not an unreachable database.
            with trio.fail_after(5), pytest.raises(psycopg.errors.QueryCanceled):
                await conn.execute("SELECT pg_sleep(3)")
            assert trio.current_time() - start < 1.5
            assert await scalar(conn, "SELECT 1") == 1
        async with pool.connection() as conn:
            assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE


async def test_statement_timeout_escaping_the_block_is_database_unavailable(
    database_url: str,
) -> None:
    # QueryCanceled is an OperationalError: out of the block it becomes DatabaseUnavailable (a 503
    # with Retry-After at the edge), but the healthy connection stays in the pool.
    config = PoolConfig(database_url, min_size=1, max_size=1, statement_timeout_ms=100)
    async with open_pool(config) as pool:
        async with pool.connection() as conn:
            pid = await scalar(conn, "SELECT pg_backend_pid()")
        with pytest.raises(DatabaseUnavailable, match="statement timeout") as caught:
            async with pool.connection() as conn:
                await conn.execute("SELECT pg_sleep(2)")
        assert isinstance(caught.value.__cause__, psycopg.errors.QueryCanceled)
        async with pool.connection() as conn:
            assert await scalar(conn, "SELECT pg_backend_pid()") == pid
        assert pool.statistics().size == 1


async def test_other_sql_errors_propagate_untranslated(database_url: str) -> None:
    async with open_pool(PoolConfig(database_url, min_size=1, max_size=1)) as pool:
        with pytest.raises(psycopg.errors.UndefinedTable):
            async with pool.connection() as conn:
                await conn.execute("SELECT * FROM no_such_table")
        async with pool.connection() as conn:
            assert await scalar(conn, "SELECT 1") == 1


async def test_idle_in_transaction_timeout_is_applied_and_its_victim_discarded(
    database_url: str,
) -> None:
    config = PoolConfig(database_url, min_size=1, max_size=1, idle_in_transaction_timeout_ms=300)
    async with open_pool(config) as pool:
        async with pool.connection() as conn:
            assert await scalar(conn, "SHOW idle_in_transaction_session_timeout") == "300ms"

        # The server ends the session of a transaction left idle too long (a FATAL InternalError):
        # a lost connection to the caller, and the pool must not hand the corpse out again.
        async def dawdle_in_transaction() -> None:
            async with pool.connection() as conn:
                await conn.execute("BEGIN")
                await trio.sleep(0.8)
                await conn.execute("SELECT 1")

        with pytest.raises(DatabaseUnavailable) as caught:
            await dawdle_in_transaction()
        assert isinstance(caught.value.__cause__, psycopg.errors.IdleInTransactionSessionTimeout)
        async with pool.connection() as conn:
            assert await scalar(conn, "SELECT 1") == 1
        assert pool.statistics().size == 1


async def test_never_more_than_max_size_under_fifty_borrowers(database_url: str) -> None:
    config = PoolConfig(
        database_url, min_size=1, max_size=5, acquire_timeout=30, application_name="chatd_max"
    )
    peak_in_use = 0
    peak_size = 0
    peak_backends = 0
    done = 0
    async with open_pool(config) as pool:

        async def borrower(i: int) -> None:
            nonlocal peak_in_use, peak_size, done
            async with pool.connection() as conn:
                stats = pool.statistics()
                peak_in_use = max(peak_in_use, stats.in_use)
                peak_size = max(peak_size, stats.size)
                assert await scalar(conn, "SELECT %s::int FROM pg_sleep(0.02)", [i]) == i
            done += 1

        async def watch_server() -> None:
            nonlocal peak_backends
            while True:
                peak_backends = max(peak_backends, await backends(database_url, "chatd_max"))
                await trio.sleep(0.01)

        with trio.fail_after(30):
            async with trio.open_nursery() as outer:
                outer.start_soon(watch_server)
                async with trio.open_nursery() as nursery:
                    for i in range(50):
                        nursery.start_soon(borrower, i)
                outer.cancel_scope.cancel()
        assert done == 50
        assert peak_in_use == 5
        assert peak_size == 5
        assert 1 <= peak_backends <= 5
        stats = pool.statistics()
        assert (stats.size, stats.idle, stats.in_use) == (5, 5, 0)
