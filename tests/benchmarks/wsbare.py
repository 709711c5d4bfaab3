"""The bare WebSocket baseline: chatd's stack (QuartTrio on hypercorn's Trio worker) doing nothing.

    python -m tests.benchmarks.wsbare [--port 0]
        Serves, on 127.0.0.1, one WebSocket route `/ws` that accepts and echoes every text frame
        back, and `POST /broadcast` that sends its body as one text frame to every open `/ws`
        connection, one after the other, and answers {"sent": N}. Hypercorn is configured as
        chatd configures it (chatd/component_config.py hypercorn_config: default backlog, no access log).
        Prints "wsbare listening on ws://127.0.0.1:PORT/ws" on stdout; stops on SIGTERM/SIGINT.

The echo is both baselines: idle connections (RSS per connection, a heartbeat being one echoed
frame) and event delivery (echoed frames per second). The only per-connection state beyond the
stack's own is one entry in a set, so that the broadcast can reach every connection.
`bare_server` starts it from a Trio test; `rss_bytes` reads a process's resident set.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import request, websocket
from quart_trio import QuartTrio

from tests.benchmarks.fastsink import _environ, wait_listening

LISTENING = re.compile(rb"wsbare listening on (ws://\S+)")


def create_app() -> QuartTrio:
    app = QuartTrio("wsbare")
    open_sockets: set[Any] = set()

    @app.websocket("/ws")
    async def echo() -> None:
        await websocket.accept()
        # The connection's own Websocket object (not the context-local proxy), for /broadcast.
        this = websocket._get_current_object()  # type: ignore[attr-defined]
        open_sockets.add(this)
        try:
            while True:
                await websocket.send(await websocket.receive())
        finally:
            open_sockets.discard(this)

    @app.post("/broadcast")
    async def broadcast() -> dict[str, int]:
        frame = await request.get_data(as_text=True)
        sent = 0
        for socket in list(open_sockets):
            await socket.send(frame)
            sent += 1
        return {"sent": sent}

    return app


async def _serve(port: int) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            urls: list[str] = await nursery.start(partial(serve, create_app(), config))
            print(f"wsbare listening on {urls[0].replace('http://', 'ws://')}/ws", flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()


# --- from a Trio test ---------------------------------------------------------------------------


@dataclass
class BareServer:
    url: str  # ws://127.0.0.1:PORT/ws
    process: trio.Process

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def http_url(self) -> str:
        return self.url.replace("ws://", "http://").removesuffix("/ws")


@asynccontextmanager
async def bare_server() -> AsyncIterator[BareServer]:
    """wsbare in a subprocess (it inherits this process's RLIMIT_NOFILE); SIGKILL on the way out."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.benchmarks.wsbare", "--port", "0"],
        env=_environ(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        match, _output = await wait_listening(process, LISTENING, "wsbare")
        yield BareServer(match.group(1).decode(), process)
    finally:
        process.kill()  # nothing to flush; a graceful stop with 10,000 connections takes ~10 s
        with trio.move_on_after(10):
            await process.wait()


def rss_bytes(pid: int) -> int:
    """VmRSS of a live process, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="wsbare")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    trio.run(_serve, args.port)


if __name__ == "__main__":
    main()
