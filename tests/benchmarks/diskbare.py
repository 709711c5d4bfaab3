"""The bare upload baseline: hypercorn's Trio worker and an ASGI endpoint that writes the request
body to a file on disk as it comes, and nothing else (no parsing, no checks, no database).

    python -m tests.benchmarks.diskbare --dir DIR [--port 0]
        POST /upload writes the body to DIR/<n>.bin with plain writes; answers 201.
        Prints "diskbare listening on http://127.0.0.1:PORT" on stdout; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import itertools
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from tests.benchmarks.fastsink import _environ, wait_listening

LISTENING = re.compile(rb"diskbare listening on (http://\S+)")


def create_app(directory: Path) -> Any:
    numbers = itertools.count()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # answered, or hypercorn logs the app as failing it
            while True:
                event = await receive()
                await send({"type": f"{event['type']}.complete"})
                if event["type"] == "lifespan.shutdown":
                    return
        path = directory / f"{next(numbers)}.bin"
        with path.open("wb") as file:  # the page cache takes it at once: the fastest baseline
            while True:
                message = await receive()
                file.write(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        path.unlink()

    return app


async def _serve(port: int, directory: Path) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            urls: list[str] = await nursery.start(partial(serve, create_app(directory), config))
            print(f"diskbare listening on {urls[0]}", flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def bare_upload_server(directory: Path) -> AsyncIterator[tuple[str, int]]:
    """diskbare in its own process: its URL and pid (for its CPU time)."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.benchmarks.diskbare", "--port", "0", "--dir", str(directory)],
        env=_environ(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        match, _output = await wait_listening(process, LISTENING, "diskbare")
        yield match.group(1).decode(), process.pid
    finally:
        process.kill()
        with trio.move_on_after(10):
            await process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="diskbare")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    trio.run(_serve, args.port, args.dir)


if __name__ == "__main__":
    main()
