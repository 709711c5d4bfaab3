"""The bare relay: chatd's stack doing nothing but relay a stream (the baseline of the stream
benchmark): QuartTrio on hypercorn's Trio worker, as chatd serves, and httpx, as chatd posts.

    python -m tests.benchmarks.relaybare --sink URL
        Serves, on 127.0.0.1, one WebSocket route `/ws`: for every text frame it receives, it
        POSTs to the sink with httpx and writes each line of the streamed answer, as it comes,
        as one text frame back. Prints "relaybare listening on ws://127.0.0.1:PORT/ws"; stops on
        SIGTERM/SIGINT.

No parsing, no database, no fan-out, no state beyond the connection: the least a server of
this stack can do to bring n8n's stream to a browser. `bare_relay` starts it from a Trio test.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import websocket
from quart_trio import QuartTrio

from tests.benchmarks.fastsink import _environ, wait_listening

LISTENING = re.compile(rb"relaybare listening on (ws://\S+)")
BODY = b'{"sessionId":"bench","message":{"content":"hello"}}'


def create_app(sink: str) -> QuartTrio:
    app = QuartTrio("relaybare")
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    client = httpx.AsyncClient(timeout=httpx.Timeout(60, connect=5), limits=limits)

    @app.websocket("/ws")
    async def relay() -> None:
        await websocket.accept()
        while True:
            await websocket.receive()
            async with client.stream("POST", sink, content=BODY) as response:
                buffer = b""
                async for data in response.aiter_bytes():
                    buffer += data
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        await websocket.send(line.decode())

    return app


async def _serve(sink: str) -> None:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            urls: list[str] = await nursery.start(partial(serve, create_app(sink), config))
            print(f"relaybare listening on {urls[0].replace('http://', 'ws://')}/ws", flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def bare_relay(sink: str) -> AsyncIterator[tuple[str, trio.Process]]:
    """The relay in a process of its own: its WebSocket URL and process."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.benchmarks.relaybare", "--sink", sink],
        env=_environ(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        match, _output = await wait_listening(process, LISTENING, "relaybare")
        yield match.group(1).decode(), process
    finally:
        process.kill()
        with trio.move_on_after(10):
            await process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="relaybare")
    parser.add_argument("--sink", required=True)
    args = parser.parse_args(argv)
    trio.run(_serve, args.sink)


if __name__ == "__main__":
    main()
