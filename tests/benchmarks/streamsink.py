"""A stand-in n8n that streams, never the bottleneck: raw HTTP/1.1 on Trio sockets.

    python -m tests.benchmarks.streamsink --tokens N [--gap S]
        Every request (any method, any path; keep-alive) is answered as n8n's "Streaming"
        response mode answers: 200 with `Content-Type: application/json; charset=utf-8` and
        chunked transfer coding at once, then newline-delimited JSON in chunks of its own: a
        `begin`, N `item`s S seconds apart (none: back to back), an `end`. The first item's text
        is "t<time.time() as it leaves> ", the others "w ". Prints "streamsink listening on
        http://127.0.0.1:PORT"; on SIGTERM/SIGINT one JSON line {"streams": N, "items": M}.

`stream_sink` starts it from a Trio test. Prebuilt bytes except the first item's stamp.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from chatd.bench.sink import Requests, serve_raw
from tests.benchmarks.fastsink import _environ, wait_listening

HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
METADATA = {"nodeId": "bench-agent", "nodeName": "bench agent", "itemIndex": 0, "runIndex": 0}
LISTENING = __import__("re").compile(rb"streamsink listening on (http://\S+)")


def line(kind: str, content: str | None = None) -> bytes:
    data: dict[str, object] = {"type": kind}
    if content is not None:
        data["content"] = content
    data["metadata"] = {**METADATA, "timestamp": 1765000000000}
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


def http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


BEGIN, ITEM, END = (
    http_chunk(line("begin")),
    http_chunk(line("item", "w ")),
    http_chunk(line("end")),
)


def first_item() -> bytes:
    return http_chunk(line("item", f"t{time.time():.6f} "))


@dataclass
class Stats:
    streams: int = 0
    items: int = 0


async def serve(
    port: int, tokens: int, gap: float, stats: Stats, *, task_status: trio.TaskStatus[str]
) -> None:
    async def answer(stream: trio.SocketStream) -> None:
        requests = Requests(stream)
        while await requests.receive():
            stats.streams += 1
            await stream.send_all(HEAD + BEGIN + first_item())
            for _ in range(tokens - 1):
                if gap:
                    await trio.sleep(gap)
                await stream.send_all(ITEM)
            stats.items += tokens
            await stream.send_all(END + b"0\r\n\r\n")

    await serve_raw(answer, "127.0.0.1", port, task_status=task_status)


async def _main(tokens: int, gap: float) -> None:
    stats = Stats()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve, 0, tokens, gap, stats)
            print(f"streamsink listening on {url}", flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()
    print(json.dumps({"streams": stats.streams, "items": stats.items}), flush=True)


@asynccontextmanager
async def stream_sink(tokens: int, gap: float) -> AsyncIterator[str]:
    """The sink in a process of its own; its URL."""
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.streamsink",
            "--tokens",
            str(tokens),
            "--gap",
            str(gap),
        ],
        env=_environ(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        match, _output = await wait_listening(process, LISTENING, "streamsink")
        yield match.group(1).decode()
    finally:
        process.kill()
        with trio.move_on_after(10):
            await process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="streamsink")
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.0)
    args = parser.parse_args(argv)
    trio.run(_main, args.tokens, args.gap)


if __name__ == "__main__":
    main()
