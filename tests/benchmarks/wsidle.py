"""The idle load: N joined connections heartbeating, each waiting for one broadcast message.

One task per connection (tests/benchmarks/wsconn.py) that pings every heartbeat interval, at
its own random phase, and notes when a `new_message` frame reached its socket (the kernel's
SO_TIMESTAMPNS stamp) and when this process got to read it. Ten thousand connections in one
Python process read a burst slower than it arrives: the stamp is what the server achieved.
Reports go to stdout as JSON lines: "up" once every connection is up or has failed, "done"
once every one has received a message (or on a line "stop" or EOF on stdin: report now).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import trio

from tests.benchmarks.wsconn import Closed
from tests.benchmarks.wsjoin import emit, failure, open_joined

PING = '{"type":"ping"}'
Gone = (Closed, OSError, trio.BrokenResourceError)


@dataclass
class Idle:
    connections: int
    up: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # before up
    closed: Counter[str] = field(default_factory=Counter)  # after up
    received: list[float | None] = field(default_factory=list)  # the kernel's stamps
    seen: list[float | None] = field(default_factory=list)  # when this process read them
    got: int = 0
    pings: int = 0
    frames: int = 0
    settled: trio.Event = field(default_factory=trio.Event)
    finished: trio.Event = field(default_factory=trio.Event)

    def __post_init__(self) -> None:
        self.received = [None] * self.connections
        self.seen = [None] * self.connections

    def check(self) -> None:
        if self.up + sum(self.failed.values()) == self.connections:
            self.settled.set()
            if self.got + sum(self.closed.values()) >= self.up:
                self.finished.set()


async def _one(
    state: Idle, n: int, args: argparse.Namespace, limiter: trio.CapacityLimiter
) -> None:
    try:
        async with limiter:
            conn = await open_joined(
                args.url, args.origin, args.first + n, args.chatd, stamp_arrivals=True
            )
    except Gone as exc:
        state.failed[failure(exc)] += 1
        state.check()
        return
    state.up += 1
    state.check()
    next_ping = trio.current_time() + random.random() * args.heartbeat
    try:
        while True:
            texts: list[str] = []
            with trio.move_on_at(next_ping):
                texts = await conn.receive_texts()
            if trio.current_time() >= next_ping:
                await conn.send_text(PING)
                state.pings += 1
                next_ping += args.heartbeat
            for text in texts:
                state.frames += 1
                if state.received[n] is None and "new_message" in text:
                    state.received[n], state.seen[n] = conn.arrived, time.time()
                    state.got += 1
                    state.check()
    except Gone as exc:
        state.closed[failure(exc)] += 1
        state.check()


async def _watch_stdin(state: Idle) -> None:
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    buffer = b""
    async with stream:
        while b"stop" not in buffer:
            chunk = await stream.receive_some()
            if not chunk:
                break
            buffer += chunk
    state.settled.set()
    state.finished.set()


async def _report_progress(state: Idle, label: str) -> None:
    shown = None
    started = time.monotonic()
    while True:
        await trio.sleep(2)
        now = (state.up, sum(state.failed.values()), state.got, sum(state.closed.values()))
        if now != shown:
            print(
                f"wsclients {label} {time.monotonic() - started:3.0f}s: {now[0]}/{state.connections}"
                f" up, {now[1]} failed, {now[2]} received, {now[3]} closed",
                file=sys.stderr,
                flush=True,
            )
            shown = now


async def idle(args: argparse.Namespace) -> None:
    state = Idle(args.connections)
    limiter = trio.CapacityLimiter(args.connect_concurrency)
    started, cpu = time.monotonic(), time.process_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_stdin, state)
        nursery.start_soon(_report_progress, state, args.label)
        for n in range(args.connections):
            nursery.start_soon(_one, state, n, args, limiter)
        await state.settled.wait()
        emit(
            {
                "event": "up",
                "up": state.up,
                "failed": dict(state.failed),
                "seconds": time.monotonic() - started,
                "cpu": time.process_time() - cpu,
            }
        )
        await state.finished.wait()
        emit(
            {
                "event": "done",
                "up": state.up,
                "failed": dict(state.failed),
                "closed": dict(state.closed),
                "pings": state.pings,
                "frames": state.frames,
                "received": state.received,
                "seen": state.seen,
            }
        )
        nursery.cancel_scope.cancel()
