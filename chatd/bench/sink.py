"""`chatd bench --sink`: an instant n8n stand-in, so a shop can measure chatd alone.

A raw HTTP/1.1 server on Trio sockets (keep-alive, Content-Length bodies): every request, any
method and path, gets the same prebuilt 200 with a reply n8n's Webhook node would send, after an
optional fixed delay; a share of requests (failure rate) gets a 503 instead, which chatd retries.
Prebuilt bytes and no framework keep it far cheaper than what it answers: never the bottleneck.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import trio

DEFAULT_REPLY = b'{"output":"Thanks! This is chatd bench\'s sink answering."}'
FAILURE = b'{"error":"failure injected by chatd bench --sink"}'


def http_response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@dataclass(frozen=True)
class SinkConfig:
    delay: float = 0.0  # seconds before each answer
    failure_rate: float = 0.0  # 0..1: share of requests answered 503
    body: bytes = DEFAULT_REPLY


@dataclass
class SinkStats:
    requests: int = 0
    failed: int = 0
    first: float = 0.0  # time.perf_counter() of the first and last request
    last: float = 0.0


async def serve_sink(
    host: str,
    port: int,
    config: SinkConfig,
    stats: SinkStats,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; `started()` with the URL once listening."""
    ok = http_response("200 OK", config.body)
    failed = http_response("503 Service Unavailable", FAILURE)

    async def answer(stream: trio.SocketStream) -> None:
        requests = Requests(stream)
        while await requests.receive():
            now = time.perf_counter()
            if not stats.requests:
                stats.first = now
            stats.last = now
            stats.requests += 1
            if config.delay:
                await trio.sleep(config.delay)
            if config.failure_rate and random.random() < config.failure_rate:
                stats.failed += 1
                await stream.send_all(failed)
            else:
                await stream.send_all(ok)

    await serve_raw(answer, host, port, task_status=task_status)


class Requests:
    """Whole HTTP/1.1 requests off one keep-alive connection (a head, then a Content-Length
    body), read and dropped: a sink only needs to know that the next one is in."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def receive(self) -> bool:
        """True once the next whole request has arrived; False when the client closed."""
        end = self._buffer.find(b"\r\n\r\n")
        while end < 0:
            if not await self._more():
                return False
            end = self._buffer.find(b"\r\n\r\n")
        total = end + 4 + content_length(self._buffer[:end])
        while len(self._buffer) < total:
            if not await self._more():
                return False
        self._buffer = self._buffer[total:]
        return True

    async def _more(self) -> bool:
        chunk = await self._stream.receive_some(65536)
        self._buffer += chunk
        return bool(chunk)


async def serve_raw(
    answer: Callable[[trio.SocketStream], Awaitable[None]],
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """`answer` each connection until cancelled; `started()` with the URL once listening."""

    async def connection(stream: trio.SocketStream) -> None:
        try:
            async with stream:
                await answer(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, ValueError):
            pass  # the client went away, or sent what is not HTTP

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, connection, port, host=host))
        bound = listeners[0].socket.getsockname()
        task_status.started(f"http://{host}:{bound[1]}")
