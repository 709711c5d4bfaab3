"""The Trio bridge against sync psycopg behind threads: trivial queries/s, side by side.

Run with `uv run pytest -m benchmark tests/benchmarks/test_bench_bridge.py -s`. Same server, same
database, same duration for each contender, interleaved in one run. Target (the issue):
the bridge does at least 4x the queries/s of sync psycopg driven through `trio.to_thread`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import trio

from chatd.db.bridge import TrioConnection

CONNECTIONS = 8
WARM_UP_SECONDS = 0.5
MEASURE_SECONDS = 3.0  # per contender, split over ROUNDS interleaved windows
ROUNDS = 3  # interleaving evens out drift in background load between contenders
TARGET_RATIO = 4.0
QUERY = "SELECT 1"

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(120)]

Worker = Callable[[int], Awaitable[None]]


@dataclass
class Tally:
    queries: int = 0
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.queries / self.seconds


async def run_window(tasks: int, worker: Worker, seconds: float, tally: Tally | None) -> None:
    """`tasks` concurrent copies of `worker` for `seconds`; counted into `tally` unless None.

    Workers run one query per call and stop between queries (no cancellation mid-query).
    """
    counted = 0
    stop = False

    async def loop(index: int) -> None:
        nonlocal counted
        while not stop:
            await worker(index)
            counted += 1

    async with trio.open_nursery() as nursery:
        for index in range(tasks):
            nursery.start_soon(loop, index)
        start = trio.current_time()
        await trio.sleep(seconds)
        done, elapsed = counted, trio.current_time() - start
        stop = True
    if tally is not None:
        tally.queries += done
        tally.seconds += elapsed


def sync_query(conn: psycopg.Connection[Any]) -> None:
    row = conn.execute(QUERY).fetchone()
    assert row == (1,)


def serial_window(conn: psycopg.Connection[Any], seconds: float) -> tuple[int, float]:
    """One connection, one thread, no Trio in the loop: the floor of per-query cost."""
    count = 0
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline:
        sync_query(conn)
        count += 1
    return count, time.monotonic() - start


async def test_bridge_versus_threaded_sync_psycopg(database_url: str) -> None:
    trio_conns: list[TrioConnection[Any]] = [
        await TrioConnection.connect_trio(database_url, connect_timeout=5)
        for _ in range(CONNECTIONS)
    ]
    sync_conns = [psycopg.connect(database_url, autocommit=True) for _ in range(CONNECTIONS)]
    serial_conn = psycopg.connect(database_url, autocommit=True)

    async def trio_worker(index: int) -> None:
        row = await (await trio_conns[index].execute(QUERY)).fetchone()
        assert row == (1,)

    async def threaded_worker(index: int) -> None:
        await trio.to_thread.run_sync(sync_query, sync_conns[index])

    async def serial(seconds: float, tally: Tally | None) -> None:
        count, elapsed = await trio.to_thread.run_sync(serial_window, serial_conn, seconds)
        if tally is not None:
            tally.queries += count
            tally.seconds += elapsed

    bridge, threaded, serial_tally = Tally(), Tally(), Tally()
    window = MEASURE_SECONDS / ROUNDS
    try:
        await run_window(CONNECTIONS, trio_worker, WARM_UP_SECONDS, None)
        await run_window(CONNECTIONS, threaded_worker, WARM_UP_SECONDS, None)
        await serial(WARM_UP_SECONDS, None)
        for _ in range(ROUNDS):
            await run_window(CONNECTIONS, trio_worker, window, bridge)
            await run_window(CONNECTIONS, threaded_worker, window, threaded)
            await serial(window, serial_tally)
    finally:
        for conn in trio_conns:
            await conn.close()
        for sync_conn in [*sync_conns, serial_conn]:
            sync_conn.close()

    ratio = bridge.per_second / threaded.per_second
    rows = [
        (f"TrioConnection: {CONNECTIONS} conns, {CONNECTIONS} Trio tasks", bridge),
        (f"sync psycopg: {CONNECTIONS} conns, trio.to_thread per query", threaded),
        ("sync psycopg: 1 conn, serial loop in one thread", serial_tally),
    ]
    print(
        f"\n{QUERY!r}: {MEASURE_SECONDS:g} s per contender in {ROUNDS} interleaved windows,"
        f" after {WARM_UP_SECONDS:g} s warm-up each"
    )
    print(f"{'contender':<58} {'queries/s':>10}")
    for name, tally in rows:
        print(f"{name:<58} {tally.per_second:>10,.0f}")
    print(f"{'ratio TrioConnection / threaded':<58} {ratio:>10.2f}  (target >= {TARGET_RATIO:g})")

    assert ratio >= TARGET_RATIO
