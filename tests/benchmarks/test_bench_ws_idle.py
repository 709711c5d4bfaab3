"""10,000 idle WebSocket sessions in one chatd process, against a bare WebSocket endpoint.

Targets (the issue): with 10,000 sessions joined and heartbeating, chatd's RSS per session is at
most 1.5 x that of a bare hypercorn WebSocket endpoint holding the same number of idle
connections, measured in the same run; and every session receives a broadcast message within
2 s.

    uv run pytest -m benchmark tests/benchmarks/test_bench_ws_idle.py -s

- The baseline is tests/benchmarks/wsbare.py: chatd's stack (QuartTrio on hypercorn's Trio
  worker, configured as chatd configures it) with one route that echoes every text frame. Each
  of its connections is "joined" by a frame that comes back, and heartbeats by a `ping` frame
  that comes back: the same frames each way as chatd's.
- chatd runs as `chatd serve` (no dispatch) on a fresh database holding 10,000 sessions,
  inserted straight into chat_sessions (session n: token "token<n>", see wsjoin.py).
- The clients are tests/benchmarks/wsclients.py `idle` (wsidle.py), one process per server
  (wsproto on Trio sockets, one task per connection): open and join 10,000 connections, at most
  32 handshakes in flight (hypercorn's default accept backlog is 100), then `ping` every
  heartbeat interval, each connection at its own random phase. The interval is chatd's default
  (30 s): 10,000 sessions then exchange ~333 pings and ~333 heartbeats a second. Both servers
  inherit this process's RLIMIT_NOFILE, raised to its hard limit.
- One server after the other, the bare one first: filling both at once was tried, and on 2
  cores it made chatd's fill slower than the two in a row. A join costs the server CPU (~3 ms
  for the bare stack, ~5 ms for chatd here), most of the run's ~90 s; a fill not done within
  UP_TIMEOUT is reported as far as it got and fails the test.
- RSS is VmRSS from /proc before the first connection, when all are joined, and HOLD_SECONDS
  later (per session = (RSS held - RSS before) / sessions). Server CPU over the hold is the
  idle cost of the heartbeats.
- The broadcast: for chatd, one SQL statement (wsjoin.PUSH) stores one bot message in every
  session as store_bot_message stores one (seq = last_seq + 1, bumped in the same statement);
  the clock starts when its commit returns (the triggers NOTIFY chatd at commit; chatd reads
  the messages and pushes them). For the bare endpoint, `POST /broadcast` sends the frame to
  every connection in one loop, timed from just before the request. A message counts as
  received when it reached the client's socket: the kernel stamps it (SO_TIMESTAMPNS, on
  CLOCK_REALTIME, hence time.time() here). One Python process reading 10,000 sockets is slower
  than the servers' burst (it read the bare broadcast up to ~1 s after it arrived): when the
  client got to read each is printed too ("read by"), not asserted.
- chatd is stopped with SIGKILL: a graceful stop with 10,000 connections open takes ~15 s and
  is not what is measured here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
import trio

from tests.benchmarks.fastsink import cpu_seconds, database_transactions, load_average
from tests.benchmarks.server import chatd_process
from tests.benchmarks.wsbare import bare_server, rss_bytes
from tests.benchmarks.wsclients import IdleClients, idle_clients
from tests.benchmarks.wsflow import echo_frame
from tests.benchmarks.wsjoin import (
    CREATE_SESSIONS,
    PUSH,
    push_params,
    raise_nofile_limit,
    session_id,
)

SESSIONS = 10_000
HEARTBEAT_SECONDS = 30.0  # chatd's default websocket.heartbeat_interval_seconds
HOLD_SECONDS = 3.0
ORIGIN = "http://bench.local"
UP_TIMEOUT = {"bare": 50.0, "chatd": 80.0}  # bounds the run under its timeout
STATS_DELAY = 1.1  # PostgreSQL publishes its counters within a second
DELIVERY_WAIT = 10.0  # 5 x the target: long enough to tell how late
RATIO_TARGET = 1.5
DELIVERY_TARGET = 2.0

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(170)]

Trigger = Callable[[], Awaitable[tuple[float, float]]]  # -> (start, t0) of the broadcast


class Phases:
    """Wall time of each step, to show where a run's time goes."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = now - self._mark
        self._mark = now

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.seconds.items())


@dataclass
class Side:
    """One server and its clients, and what was measured of them."""

    name: str
    pid: int
    clients: IdleClients
    trigger: Trigger
    rss_before: int
    rss_up: int = 0
    rss_held: int = 0
    rss_after: int = 0  # after the broadcast
    hold_cpu: float = 0.0  # server CPU seconds over the hold
    up: dict[str, Any] = field(default_factory=dict)
    done: dict[str, Any] = field(default_factory=dict)
    trigger_seconds: float = 0.0  # from the start of the trigger to t0
    delays: list[float] = field(default_factory=list)  # arrival - t0, of those received
    read_delays: list[float] = field(default_factory=list)  # read by the client - t0
    broadcast_cpu: float = 0.0  # server CPU seconds from the trigger to the final report
    # chatd: database transactions so far (the trigger's own is one); the count in the broadcast
    transactions: Callable[[], Awaitable[int]] | None = None
    broadcast_transactions: int | None = None

    @property
    def full(self) -> bool:
        return int(self.up["up"]) == SESSIONS

    @property
    def per_session(self) -> float:
        return (self.rss_held - self.rss_before) / max(int(self.up["up"]), 1)

    def delay(self, p: float, delays: list[float] | None = None) -> float:
        ordered = sorted(self.delays if delays is None else delays)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("inf")

    async def fill_and_hold(self, phase: Phases) -> None:
        """Wait until every connection is up, then hold them for HOLD_SECONDS."""
        self.up = await self.clients.wait_up(UP_TIMEOUT[self.name])
        phase(f"{self.name} join")
        self.rss_up, cpu = rss_bytes(self.pid), cpu_seconds(self.pid)
        await trio.sleep(HOLD_SECONDS)
        self.rss_held, self.hold_cpu = rss_bytes(self.pid), cpu_seconds(self.pid) - cpu
        phase(f"{self.name} hold")

    async def broadcast(self, phase: Phases) -> None:
        if not self.full:  # the client was stopped: nobody is listening any more
            self.done = await self.clients.wait_done(DELIVERY_WAIT)
            return
        transactions = await self.transactions() if self.transactions else 0
        cpu = cpu_seconds(self.pid)
        start, t0 = await self.trigger()
        self.trigger_seconds = t0 - start
        self.done = await self.clients.wait_done(DELIVERY_WAIT)
        self.broadcast_cpu = cpu_seconds(self.pid) - cpu
        self.rss_after = rss_bytes(self.pid)
        if self.transactions:
            await trio.sleep(STATS_DELAY)
            self.broadcast_transactions = await self.transactions() - transactions
        self.delays = [at - t0 for at in self.done["received"] if at is not None]
        self.read_delays = [at - t0 for at in self.done["seen"] if at is not None]
        phase(f"{self.name} broadcast")


def create_sessions(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(CREATE_SESSIONS, {"first": 0, "count": SESSIONS})
        ids = [session_id(n) for n in range(SESSIONS)]
        row = conn.execute(
            "SELECT count(*) FROM chat_sessions WHERE id = ANY(%s)", [ids]
        ).fetchone()
    assert row == (SESSIONS,)  # the clients name the sessions as the SQL does
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE chat_sessions")


def push_to_all(database_url: str) -> tuple[float, float]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        ids = [session_id(n) for n in range(SESSIONS)]
        start = time.time()
        rows = conn.execute(PUSH, push_params(ids, content="A broadcast to everyone")).fetchall()
        t0 = time.time()  # autocommit: the commit has returned
    assert len(rows) == SESSIONS
    return start, t0


async def open_bare(stack: AsyncExitStack) -> Side:
    server = await stack.enter_async_context(bare_server())
    http = await stack.enter_async_context(httpx.AsyncClient(timeout=60))

    async def broadcast() -> tuple[float, float]:
        start = time.time()
        response = await http.post(f"{server.http_url}/broadcast", content=echo_frame(400))
        response.raise_for_status()
        return start, start

    rss = rss_bytes(server.pid)
    clients = await stack.enter_async_context(
        idle_clients(
            server.url,
            connections=SESSIONS,
            origin=ORIGIN,
            heartbeat=HEARTBEAT_SECONDS,
            label="bare",
        )
    )
    return Side("bare", server.pid, clients, broadcast, rss)


async def open_chatd(stack: AsyncExitStack, database_url: str) -> Side:
    url, process = await stack.enter_async_context(
        chatd_process(
            database_url,
            graceful=False,
            CHATD_QUEUE__DISPATCH="false",
            CHATD_WEBSOCKET__ALLOWED_ORIGINS=ORIGIN,
            CHATD_WEBSOCKET__MAX_CONNECTIONS_PER_IP=str(SESSIONS * 10),
            CHATD_WEBSOCKET__HEARTBEAT_INTERVAL_SECONDS=str(HEARTBEAT_SECONDS),
        )
    )

    async def broadcast() -> tuple[float, float]:
        return await trio.to_thread.run_sync(push_to_all, database_url)

    def count() -> int:
        with psycopg.connect(database_url) as conn:
            return database_transactions(conn)

    async def transactions() -> int:
        return await trio.to_thread.run_sync(count)

    rss = rss_bytes(process.pid)
    clients = await stack.enter_async_context(
        idle_clients(
            url.replace("http://", "ws://") + "/api/chat/ws",
            connections=SESSIONS,
            chatd=True,
            origin=ORIGIN,
            heartbeat=HEARTBEAT_SECONDS,
            label="chatd",
        )
    )
    return Side("chatd", process.pid, clients, broadcast, rss, transactions=transactions)


def report(sides: list[Side], phases: Phases) -> None:
    mb = 1 << 20
    print(
        f"\n{SESSIONS} idle WebSocket sessions per server, heartbeat {HEARTBEAT_SECONDS:g} s,"
        f" held {HOLD_SECONDS:g} s: chatd vs the bare stack (wsbare), same run"
    )
    print(
        f"  {'':<6} {'join':>7} {'RSS before':>10} {'up':>8} {'held':>8} {'after':>8}"
        f" {'per session':>11} {'hold CPU':>8}   broadcast: {'got':>11} {'first':>7} {'p50':>7}"
        f" {'p99':>7} {'max':>7} {'read by':>7}  (trigger)"
    )
    for side in sides:
        print(
            f"  {side.name:<6} {side.up['seconds']:6.1f}s {side.rss_before / mb:8.1f}MB"
            f" {side.rss_up / mb:6.1f}MB {side.rss_held / mb:6.1f}MB {side.rss_after / mb:6.1f}MB"
            f" {side.per_session / 1024:8.1f} KB {side.hold_cpu / HOLD_SECONDS:8.0%}"
            f"   {len(side.delays):5d}/{side.up['up']:<5d} {side.delay(0.0) * 1000:5.0f}ms"
            f" {side.delay(0.5) * 1000:5.0f}ms {side.delay(0.99) * 1000:5.0f}ms"
            f" {side.delay(1.0) * 1000:5.0f}ms {side.delay(1.0, side.read_delays) * 1000:5.0f}ms"
            f"  ({side.trigger_seconds * 1000:.0f} ms)"
        )
        print(
            f"  {'':<6} pings sent {side.done.get('pings')}, frames received"
            f" {side.done.get('frames')}, failed to join {side.up['failed'] or 0},"
            f" closed by the server {side.done.get('closed') or 0}; server CPU in the broadcast"
            f" {side.broadcast_cpu:.2f} s"
            + (
                f", database transactions {side.broadcast_transactions} (2 of them this test's)"
                if side.broadcast_transactions is not None
                else ""
            )
        )
    bare, chatd = sides
    print(
        f"  RSS per session chatd / bare = {chatd.per_session / bare.per_session:.2f}"
        f"  (target <= {RATIO_TARGET:g})"
    )
    print(
        f"  chatd broadcast: {len(chatd.delays)}/{SESSIONS} received, the last"
        f" {chatd.delay(1.0):.2f} s after the commit (target: all within {DELIVERY_TARGET:g} s)"
    )
    print("  " + load_average())
    print(f"  phases: {phases}")


async def test_idle_sessions_against_bare_websockets(database_url: str) -> None:
    limit = raise_nofile_limit()
    assert limit > SESSIONS + 1000, f"RLIMIT_NOFILE hard limit {limit} is too low"
    phase = Phases()
    async with AsyncExitStack() as stack:
        bare = await open_bare(stack)
        phase("bare start")
        await bare.fill_and_hold(phase)
        await bare.broadcast(phase)
    phase("bare stop")
    await trio.to_thread.run_sync(create_sessions, database_url)
    phase("sessions")
    async with AsyncExitStack() as stack:
        chatd = await open_chatd(stack, database_url)
        phase("chatd start")
        await chatd.fill_and_hold(phase)
        await chatd.broadcast(phase)
    phase("chatd stop")
    report([bare, chatd], phase)

    assert bare.full, f"the bare server took over {UP_TIMEOUT['bare']} s to join all"
    assert chatd.full, f"chatd took over {UP_TIMEOUT['chatd']} s to join all"
    assert not chatd.done["closed"]
    assert chatd.per_session <= RATIO_TARGET * bare.per_session
    assert len(chatd.delays) == SESSIONS
    assert chatd.delay(1.0) <= DELIVERY_TARGET
