"""The Trio bridge to psycopg against a real server: queries, errors, cancellation, restarts."""

from __future__ import annotations

import random
import signal
import string
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
import trio
from psycopg import pq
from psycopg.rows import dict_row

from chatd.db.bridge import TrioConnection
from chatd.db.pool import Pool, PoolConfig, open_pool
from chatd.errors import DatabaseUnavailable
from tests.pg import EmbeddedServer, running_cluster

Conn = TrioConnection[dict[str, Any]]


async def connect(url: str) -> Conn:
    conn: Conn = await TrioConnection.connect_trio(url, connect_timeout=5)
    conn.row_factory = dict_row
    return conn


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[Conn]:
    conn = await connect(database_url)
    yield conn
    await conn.close()


async def one(conn: Conn, sql: Any, params: Any = None) -> dict[str, Any]:
    row = await (await conn.execute(sql, params)).fetchone()
    assert row is not None
    return row


async def running_sleeps(url: str, pid: int | None = None) -> int:
    """Backends of this database still executing pg_sleep (optionally only backend `pid`)."""
    monitor = await connect(url)
    try:
        row = await one(
            monitor,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'active' AND query LIKE '%%pg_sleep%%' AND pid <> pg_backend_pid()"
            " AND (%(pid)s::int IS NULL OR pid = %(pid)s::int)",
            {"pid": pid},
        )
        return int(row["n"])
    finally:
        await monitor.close()


async def test_query_with_params_returns_dict_rows(conn: Conn) -> None:
    row = await one(
        conn, "SELECT %(a)s::int + %(b)s::int AS total, %(s)s AS s", {"a": 2, "b": 40, "s": "é"}
    )
    assert row == {"total": 42, "s": "é"}
    assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
    assert conn.is_usable()


async def test_transaction_rolls_back_on_error_and_connection_stays_usable(conn: Conn) -> None:
    await conn.execute("CREATE TABLE bridge_tx (v int)")

    async def insert_then_fail() -> None:
        async with conn.transaction():
            await conn.execute("INSERT INTO bridge_tx VALUES (1)")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await insert_then_fail()
    async with conn.transaction():
        await conn.execute("INSERT INTO bridge_tx VALUES (2)")
    assert (await one(conn, "SELECT array_agg(v) AS vs FROM bridge_tx"))["vs"] == [2]
    assert conn.is_usable()


async def test_sql_error_raises_psycopg_error_and_connection_stays_usable(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        await conn.execute("SELECT 1 / 0")
    assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
    assert conn.is_usable()
    assert (await one(conn, "SELECT 7 AS seven"))["seven"] == 7


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@/postgres?host=/nonexistent-chatd-socket-dir",
        "postgresql://postgres@127.0.0.1:1/postgres",
    ],
    ids=["missing-socket-dir", "closed-port"],
)
async def test_connect_to_nothing_raises_database_unavailable_quickly(url: str) -> None:
    start = trio.current_time()
    with pytest.raises(DatabaseUnavailable, match="cannot connect"):
        await TrioConnection.connect_trio(url, connect_timeout=5)
    assert trio.current_time() - start < 2


async def test_cancel_mid_query_leaves_connection_idle_and_server_quiet(
    conn: Conn, database_url: str
) -> None:
    pid = (await one(conn, "SELECT pg_backend_pid() AS pid"))["pid"]
    start = trio.current_time()
    with trio.move_on_after(0.2) as scope:
        await conn.execute("SELECT pg_sleep(10)")
    elapsed = trio.current_time() - start
    assert scope.cancelled_caught
    assert elapsed < 2.5
    # The bridge cancels server-side and drains: the connection is idle, not closed, not ACTIVE.
    assert not conn.closed
    assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
    assert await running_sleeps(database_url, pid) == 0
    assert (await one(conn, "SELECT pg_backend_pid() AS pid"))["pid"] == pid


async def test_cancel_inside_transaction_rolls_back_and_leaves_connection_idle(
    conn: Conn, database_url: str
) -> None:
    await conn.execute("CREATE TABLE bridge_cancel_tx (v int)")
    with trio.move_on_after(0.1) as scope:
        async with conn.transaction():
            await conn.execute("INSERT INTO bridge_cancel_tx VALUES (1)")
            await conn.execute("SELECT pg_sleep(10)")
    assert scope.cancelled_caught
    # The block's ROLLBACK ran although the scope was cancelled: idle, and psycopg's transaction
    # bookkeeping unwound (the next block is a real transaction, not a savepoint in a dead one).
    assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
    async with conn.transaction():
        await conn.execute("INSERT INTO bridge_cancel_tx VALUES (2)")
    await conn.rollback()  # forbidden while psycopg believes a transaction block is open
    assert (await one(conn, "SELECT array_agg(v) AS vs FROM bridge_cancel_tx"))["vs"] == [2]

    async with open_pool(PoolConfig(database_url, min_size=1, max_size=1)) as pool:
        with trio.move_on_after(0.1):
            async with pool.connection() as pooled, pooled.transaction():
                await pooled.execute("SELECT pg_sleep(10)")
        async with pool.connection() as pooled:
            assert pooled.pgconn.transaction_status == pq.TransactionStatus.IDLE
            assert await select_one_on(pooled) == 1
    assert await running_sleeps(database_url) == 0


async def test_cancelled_queries_never_hand_out_a_broken_pooled_connection(
    database_url: str,
) -> None:
    config = PoolConfig(database_url, min_size=1, max_size=2, acquire_timeout=3)
    delays = [0, 0.001, 0.005, 0.02, 0.1] * 4  # land in send, wait and fetch alike
    backend_pids = set()
    async with open_pool(config) as pool:
        for i, delay in enumerate(delays):
            with trio.fail_after(5):
                with trio.move_on_after(delay):
                    async with pool.connection() as conn:
                        await conn.execute("SELECT pg_sleep(10)")
                async with pool.connection() as conn:
                    assert conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
                    row = await (
                        await conn.execute("SELECT %s::int AS v, pg_backend_pid() AS pid", [i])
                    ).fetchone()
                    assert row is not None
                    assert row["v"] == i
                    backend_pids.add(row["pid"])
        # Cancelled connections were recovered (cancelled server-side), not thrown away.
        assert len(backend_pids) <= 2
        stats = pool.statistics()
        assert stats.in_use == 0
        assert 1 <= stats.size <= 2
        assert stats.idle == stats.size
    assert await running_sleeps(database_url) == 0


async def test_large_parameter_round_trip(conn: Conn) -> None:
    # 5 MB does not fit libpq's socket buffers: exercises the write-wait (WAIT_RW) path.
    chunk = "".join(random.choices(string.ascii_letters, k=1024))
    text = chunk * 5 * 1024
    row = await one(conn, "SELECT %s::text AS t, length(%s::text) AS n", [text, text])
    assert row["n"] == len(text)
    assert row["t"] == text
    assert conn.is_usable()


async def test_concurrent_queries_over_eight_connections(database_url: str) -> None:
    conns = [await connect(database_url) for _ in range(8)]
    results: dict[int, list[int]] = {}

    async def worker(index: int, conn: Conn) -> None:
        got = []
        for i in range(50):
            row = await one(conn, "SELECT %s::int * 1000 + %s::int AS v", [index, i])
            got.append(row["v"])
        results[index] = got

    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for index, conn in enumerate(conns):
                    nursery.start_soon(worker, index, conn)
    finally:
        for conn in conns:
            await conn.close()
    assert results == {index: [index * 1000 + i for i in range(50)] for index in range(8)}


# --- server restarts: our own cluster, so the shared one is never disturbed ----------------------


@pytest.fixture(scope="module")
def own_server() -> Iterator[EmbeddedServer]:
    with running_cluster() as server:
        yield server


@pytest.fixture
async def server(own_server: EmbeddedServer) -> AsyncIterator[EmbeddedServer]:
    yield own_server
    if own_server.process is None:  # a failed test left it stopped
        await trio.to_thread.run_sync(own_server.start)


async def select_one(pool: Pool) -> int:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT 1 AS one")).fetchone()
    assert row is not None
    return int(row["one"])


async def concurrently(pool: Pool, borrowers: int) -> list[int]:
    """`borrowers` queries at once, so every idle connection is checked out."""
    results: list[int] = []

    async def borrow() -> None:
        async with pool.connection() as conn:
            await conn.execute("SELECT pg_sleep(0.05)")
            results.append(await select_one_on(conn))

    async with trio.open_nursery() as nursery:
        for _ in range(borrowers):
            nursery.start_soon(borrow)
    return results


async def select_one_on(conn: Any) -> int:
    row = await (await conn.execute("SELECT 1 AS one")).fetchone()
    return int(row["one"])


ACQUIRE_TIMEOUT = 1.0


def restart_config(url: str) -> PoolConfig:
    return PoolConfig(
        url, min_size=2, max_size=4, connect_timeout=1.0, acquire_timeout=ACQUIRE_TIMEOUT
    )


@pytest.mark.parametrize("mode", [signal.SIGINT, signal.SIGQUIT], ids=["fast", "immediate"])
async def test_pool_survives_server_restart(server: EmbeddedServer, mode: signal.Signals) -> None:
    async with open_pool(restart_config(server.url)) as pool:
        assert await concurrently(pool, 2) == [1, 1]
        await trio.to_thread.run_sync(server.stop, mode)

        # Stale connections discarded, reconnecting retried with backoff until acquire_timeout.
        for _ in range(2):
            start = trio.current_time()
            with trio.fail_after(ACQUIRE_TIMEOUT + 5), pytest.raises(DatabaseUnavailable):
                await select_one(pool)
            assert trio.current_time() - start <= ACQUIRE_TIMEOUT + 0.5

        await trio.to_thread.run_sync(server.start)
        with trio.fail_after(10):
            assert await select_one(pool) == 1
            assert await concurrently(pool, 2) == [1, 1]
        assert pool.statistics().in_use == 0

        # Stop and start with idle connections in the pool: checkout must discard the stale ones.
        assert pool.statistics().idle == 2
        await trio.to_thread.run_sync(server.stop, mode)
        await trio.to_thread.run_sync(server.start)
        with trio.fail_after(10):
            assert await concurrently(pool, 2) == [1, 1]
        stats = pool.statistics()
        assert stats.size <= stats.max_size
        assert stats.idle == stats.size


@pytest.mark.parametrize("mode", [signal.SIGINT, signal.SIGQUIT], ids=["fast", "immediate"])
async def test_query_in_flight_when_server_stops_raises_database_unavailable(
    server: EmbeddedServer, mode: signal.Signals
) -> None:
    raised: list[BaseException] = []
    async with open_pool(restart_config(server.url)) as pool:

        async def sleeper(*, task_status: trio.TaskStatus[None]) -> None:
            try:
                async with pool.connection() as conn:
                    task_status.started()
                    await conn.execute("SELECT pg_sleep(30)")
            except DatabaseUnavailable as exc:
                raised.append(exc)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                await nursery.start(sleeper)
                # The server's state, not ours: nothing to wait on but polling.
                while await running_sleeps(server.url) == 0:
                    await trio.sleep(0.02)
                await trio.to_thread.run_sync(server.stop, mode)
        assert len(raised) == 1
        assert isinstance(raised[0].__cause__, psycopg.OperationalError)
        assert pool.statistics().in_use == 0

        await trio.to_thread.run_sync(server.start)
        with trio.fail_after(10):
            assert await select_one(pool) == 1
