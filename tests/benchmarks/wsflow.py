"""Messages pushed to K connections: throughput (a window in flight) and latency (paced).

    echo    against wsbare: each frame sent comes back. Window: W frames in flight per
            connection, the next sent as each returns. Rate: R frames/s in all, round robin;
            latency = the echo's arrival - its send.
    events  against chatd: a writer in this process (psycopg, autocommit, in a thread) commits
            bot messages (wsjoin.PUSH) into the K joined sessions. Window: B messages into each
            session per statement, whenever at most K x (W - B) are committed and not yet
            received, so at most W are in flight per connection as in the echo, and a slower
            server is measured at its own pace rather than buried (and closed with 4008).
            Rate: one message per statement, R per second, round robin; latency = its arrival
            - when its commit returned to the writer.

Arrivals in paced runs are the kernel's stamps (SO_TIMESTAMPNS, CLOCK_REALTIME), so the other
times are time.time() too; the switch interval is lowered so that the writer thread gets the GIL
back (and stamps its commit) without waiting out the event loop's 5 ms slices.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from tests.benchmarks.wsconn import Connection
from tests.benchmarks.wsjoin import emit, open_all, percentiles, push_params, session_id

STRAGGLER_SECONDS = 2.0  # how long a paced run waits for its last messages
WARMUP_SECONDS = 1.0  # load before a throughput window opens
SWITCH_INTERVAL = 0.0005  # seconds; Python's default is 0.005

OnTexts = Callable[[int, Connection, list[str]], Awaitable[None]]


@dataclass
class Flow:
    received: int = 0  # messages counted, in all
    frames: int = 0  # every frame received, in all
    duplicates: int = 0  # chatd: a (connection, seq) received twice
    # (connection, seq) for chatd, (0, frame id) for the echo -> when it arrived
    arrivals: dict[tuple[int, int], float] = field(default_factory=dict)
    wake: trio.lowlevel.ParkingLot = field(default_factory=trio.lowlevel.ParkingLot)


async def _loop(
    conn: Connection, index: int, on_texts: OnTexts, prime: Callable[[int], Awaitable[None]]
) -> None:
    await prime(index)  # in this task: it alone sends on this connection
    while True:
        await on_texts(index, conn, await conn.receive_texts())


async def _nothing(_index: int) -> None:
    pass


async def _run(
    conns: list[Connection],
    flow: Flow,
    on_texts: OnTexts,
    drive: Callable[[], Awaitable[dict[str, Any]]],
    prime: Callable[[int], Awaitable[None]] = _nothing,
) -> None:
    """A receive loop per connection while `drive()` runs; emit its result and the totals
    (all messages of the run, for CPU per message over the whole run)."""
    async with trio.open_nursery() as nursery:
        for index, conn in enumerate(conns):
            nursery.start_soon(_loop, conn, index, on_texts, prime)
        result = await drive()
        emit({**result, "total": flow.received, "frames": flow.frames, "dup": flow.duplicates})
        nursery.cancel_scope.cancel()


async def _window(flow: Flow, seconds: float) -> dict[str, Any]:
    """Messages received per second over `seconds`, after WARMUP_SECONDS of the same load."""
    await trio.sleep(WARMUP_SECONDS)
    started, cpu, at_start = time.time(), time.process_time(), flow.received
    await trio.sleep(seconds)
    ended = time.time()
    messages = flow.received - at_start
    return {
        "messages": messages,
        "seconds": ended - started,
        "rate": messages / (ended - started),
        "cpu": time.process_time() - cpu,
        "window": [started, ended],  # time.time(): for the server's CPU over the same span
    }


async def _paced(rate: float, count: int, send: Callable[[int], Awaitable[None]]) -> float:
    """send(0 .. count - 1) at `rate` per second; how late the last one started (s)."""
    start = trio.current_time()
    for k in range(count):
        await trio.sleep_until(start + k / rate)
        await send(k)
    return trio.current_time() - start - (count - 1) / rate


async def _stragglers(missing: Callable[[], bool]) -> None:
    with trio.move_on_after(STRAGGLER_SECONDS):
        while missing():
            await trio.sleep(0.01)


def echo_frame(size: int, ident: int = 0) -> str:
    """A `new_message`-shaped text frame of `size` characters."""
    base = f'{{"type":"new_message","id":{ident},"pad":""}}'
    return base[:-2] + "x" * max(0, size - len(base)) + '"}'


async def echo(args: argparse.Namespace) -> None:
    conns = await open_all(
        args.url,
        args.origin,
        args.first,
        args.connections,
        False,
        concurrency=args.connect_concurrency,
        stamp_arrivals=not args.window,
    )
    flow = Flow()
    frame = echo_frame(args.size)
    sent_at: dict[int, float] = {}

    async def on_texts(index: int, conn: Connection, texts: list[str]) -> None:
        flow.received += len(texts)
        flow.frames += len(texts)
        if args.window:
            await conn.send_texts([frame] * len(texts))
            return
        for text in texts:
            flow.arrivals[(0, json.loads(text)["id"])] = conn.arrived

    async def prime(index: int) -> None:
        await conns[index].send_texts([frame] * args.window)

    async def send(k: int) -> None:
        sent_at[k] = time.time()
        await conns[k % len(conns)].send_text(echo_frame(args.size, k))

    async def drive() -> dict[str, Any]:
        if args.window:
            return await _window(flow, args.seconds)
        count = int(args.rate * args.seconds)
        late = await _paced(args.rate, count, send)
        await _stragglers(lambda: len(flow.arrivals) < count)
        rtts = [flow.arrivals[(0, k)] - t for k, t in sent_at.items() if (0, k) in flow.arrivals]
        return {"sent": count, "late": late, "latency": percentiles(rtts)}

    await _run(conns, flow, on_texts, drive, prime if args.window else _nothing)


async def events(args: argparse.Namespace) -> None:
    import psycopg

    from tests.benchmarks.wsjoin import PUSH

    sys.setswitchinterval(SWITCH_INTERVAL)
    conns = await open_all(
        args.url,
        args.origin,
        args.first,
        args.connections,
        True,
        concurrency=args.connect_concurrency,
        stamp_arrivals=not args.window,
    )
    flow = Flow()
    index_of = {session_id(args.first + n): n for n in range(args.connections)}
    ids = list(index_of)
    sizes: list[int] = []
    commits: dict[tuple[int, int], tuple[float, float]] = {}  # (conn, seq) -> statement times
    writes: list[float] = []  # how long each statement took, to its commit
    parked = 0.0  # seconds the windowed writer waited for the window
    writer = await trio.to_thread.run_sync(
        lambda: psycopg.connect(args.database_url, autocommit=True)
    )

    def push(targets: list[str], count: int) -> int:
        before = time.time()
        rows = writer.execute(PUSH, push_params(targets, count)).fetchall()
        after = time.time()  # autocommit: the commit has returned
        writes.append(after - before)
        if not args.window:
            for sid, seq in rows:
                commits[(index_of[sid], seq)] = (before, after)
        return len(rows)

    async def on_texts(index: int, conn: Connection, texts: list[str]) -> None:
        flow.frames += len(texts)
        for text in texts:
            if "new_message" not in text:
                continue
            flow.received += 1
            if len(sizes) < 100:
                sizes.append(len(text.encode()))
            if args.window:
                continue  # only counted, as the echo's frames are
            key = (index, json.loads(text)["message"]["seq"])
            if key in flow.arrivals:
                flow.duplicates += 1
            else:
                flow.arrivals[key] = conn.arrived
        flow.wake.unpark_all()

    async def write_windowed() -> None:
        nonlocal parked
        committed = 0
        limit = len(ids) * (args.window - args.batch)
        while True:
            if committed - flow.received > limit:
                since = time.time()
                while committed - flow.received > limit:
                    await flow.wake.park()
                parked += time.time() - since
            committed += await trio.to_thread.run_sync(push, ids, args.batch)

    async def send(k: int) -> None:
        await trio.to_thread.run_sync(push, [ids[k % len(ids)]], 1)

    async def drive() -> dict[str, Any]:
        if args.window:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(write_windowed)
                result = await _window(flow, args.seconds)
                nursery.cancel_scope.cancel()
            # Where the writer's time went (whole run): is the load generator the bottleneck?
            writer_time = {"statements": len(writes), "writing": sum(writes), "parked": parked}
            return {**result, "writer": writer_time, "frame_bytes": sizes}
        count = int(args.rate * args.seconds)
        start = time.time()
        late = await _paced(args.rate, count, send)
        await _stragglers(lambda: any(key not in flow.arrivals for key in commits))
        arrived = {k: (flow.arrivals[k], *t) for k, t in commits.items() if k in flow.arrivals}
        return {
            "sent": count,
            "late": late,
            "missing": len(commits) - len(arrived),
            "unexpected": len(flow.arrivals.keys() - commits.keys()),
            "latency": percentiles([at - after for at, _, after in arrived.values()]),
            "latency_from_statement": percentiles([at - b for at, b, _ in arrived.values()]),
            # (latency, commit returned: s since the start, connection, seq) of the ten slowest
            "slowest": sorted(
                ((at - after, after - start, *k) for k, (at, _, after) in arrived.items()),
                reverse=True,
            )[:10],
            "frame_bytes": sizes,
        }

    try:
        await _run(conns, flow, on_texts, drive)
    finally:
        writer.close()
