"""WebSocket load clients, each run in a process of its own so that neither its CPU nor its memory
is counted as the server's; and the helpers that start them from a Trio test. Every result is
one JSON line on stdout; progress goes to stderr.

    python -m tests.benchmarks.wsclients idle URL --connections N [--chatd] [--origin O]
            [--heartbeat S] [--first F] [--label L]                       (wsidle.py)
        N connections joined to sessions F .. F + N - 1 (`--chatd`: join_chat answered by
        `joined`; else the same frame, answered by its echo), a `ping` on each every S seconds,
        each waiting for one `new_message`.

    python -m tests.benchmarks.wsclients echo URL --connections K --seconds S --size B
            (--window W | --rate R)                                       (wsflow.py)
    python -m tests.benchmarks.wsclients events URL --database-url DSN --connections K
            --seconds S (--window W [--batch B] | --rate R) [--first F]   (wsflow.py)
        Messages pushed to K connections, echoed by wsbare or committed into chatd's sessions:
        messages/s with W in flight per connection, or latencies at R per second.

Connections are tests/benchmarks/wsconn.py (wsproto on a Trio socket, one task each); at most
`--connect-concurrency` handshakes are in flight (hypercorn's default accept backlog is 100).
Both ends need file descriptors: the client raises its RLIMIT_NOFILE to the hard limit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from tests.benchmarks.fastsink import _environ
from tests.benchmarks.wsflow import echo, events
from tests.benchmarks.wsidle import idle
from tests.benchmarks.wsjoin import raise_nofile_limit

STOP_TIMEOUT = 30.0  # for a client told to stop to report


class _Lines:
    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def next_json(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some()
            if not chunk:
                raise RuntimeError(f"wsclients ended: {self.buffer[-2000:]!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)  # type: ignore[no-any-return]


@dataclass
class IdleClients:
    process: trio.Process
    lines: _Lines

    async def wait_up(self, timeout: float) -> dict[str, Any]:
        """The report once every connection is up (or has failed), or after `timeout`: then the
        client is told to stop, and reports how many are up (then its final report)."""
        return await self._next_or_stop(timeout)

    async def wait_done(self, timeout: float) -> dict[str, Any]:
        """The final report: when every connection has received a message, or after `timeout`
        (then the client is told to stop and reports what it has)."""
        return await self._next_or_stop(timeout)

    async def _next_or_stop(self, timeout: float) -> dict[str, Any]:
        with trio.move_on_after(timeout):
            return await self.lines.next_json()
        assert self.process.stdin is not None
        await self.process.stdin.send_all(b"stop\n")
        with trio.fail_after(STOP_TIMEOUT):
            return await self.lines.next_json()


def _command(mode: str, url: str, options: dict[str, object]) -> list[str]:
    command = [sys.executable, "-m", "tests.benchmarks.wsclients", mode, url]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            command.append(flag)
        elif value is not None and value is not False:
            command += [flag, str(value)]
    return command


@asynccontextmanager
async def idle_clients(url: str, **options: object) -> AsyncIterator[IdleClients]:
    """The idle client in a subprocess (options as on its command line); killed on the way out."""
    process = await trio.lowlevel.open_process(
        _command("idle", url, options),
        env=_environ(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        yield IdleClients(process, _Lines(process.stdout))
    finally:
        if process.returncode is None:
            process.kill()
        with trio.move_on_after(STOP_TIMEOUT):
            await process.wait()


async def run_clients(mode: str, url: str, **options: object) -> dict[str, Any]:
    """Run the echo or events client to completion; its JSON result."""
    result = await trio.run_process(
        _command(mode, url, options), env=_environ(), capture_stdout=True, check=False
    )
    if result.returncode:
        raise RuntimeError(f"wsclients {mode} failed with exit status {result.returncode}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="wsclients")
    modes = parser.add_subparsers(dest="mode", required=True)
    for name in ("idle", "echo", "events"):
        mode = modes.add_parser(name)
        mode.add_argument("url")
        mode.add_argument("--connections", type=int, required=True)
        mode.add_argument("--origin", default=None)
        mode.add_argument("--connect-concurrency", type=int, default=32)
        mode.add_argument("--chatd", action="store_true")
        mode.add_argument("--first", type=int, default=0, help="session number of connection 0")
        if name == "idle":
            mode.add_argument("--heartbeat", type=float, default=30.0)
            mode.add_argument("--label", default="", help="names this client in progress lines")
        else:
            mode.add_argument("--seconds", type=float, required=True)
            paced = mode.add_mutually_exclusive_group(required=True)
            paced.add_argument("--window", type=int)
            paced.add_argument("--rate", type=float)
        if name == "echo":
            mode.add_argument("--size", type=int, default=400)
        if name == "events":
            mode.add_argument("--database-url", required=True)
            mode.add_argument("--batch", type=int, default=1, help="messages per session")
    args = parser.parse_args(argv)
    raise_nofile_limit()
    trio.run({"idle": idle, "echo": echo, "events": events}[args.mode], args)


if __name__ == "__main__":
    main()
