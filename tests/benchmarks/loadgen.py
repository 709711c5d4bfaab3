"""A minimal keep-alive HTTP/1.1 load generator on Trio sockets.

Prebuilt request bytes and a bare response parser keep the client's cost per request far below
the server's, so a run measures chatd rather than the client. Bounded by count and time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import trio


@dataclass
class LoadResult:
    requests: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def request_bytes(
    method: str, path: str, host: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(stream: trio.SocketStream, buffer: bytearray) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length, from `buffer` and then the stream:
    (status, body). What follows it stays in `buffer` for the next response."""
    while b"\r\n\r\n" not in buffer:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    head, _, _ = bytes(buffer).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    start = len(head) + 4
    while len(buffer) < start + length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    body = bytes(buffer[start : start + length])
    del buffer[: start + length]
    return status, body


async def run_load(
    url: str,
    make_request: Callable[[int], bytes],
    *,
    connections: int,
    duration: float,
    max_requests: int = 10_000_000,
) -> LoadResult:
    """`connections` keep-alive connections sending back to back for `duration` seconds."""
    parts = urlsplit(url)
    result = LoadResult()
    counter = iter(range(max_requests))
    deadline = trio.current_time() + duration

    async def worker() -> None:
        stream = await trio.open_tcp_stream(parts.hostname or "127.0.0.1", parts.port or 80)
        buffer = bytearray()
        async with stream:
            while trio.current_time() < deadline:
                n = next(counter, None)
                if n is None:
                    return
                started = time.perf_counter()
                await stream.send_all(make_request(n))
                status, _body = await read_response(stream, buffer)
                result.latencies.append(time.perf_counter() - started)
                if status == 200:
                    result.requests += 1
                else:
                    result.errors[status] = result.errors.get(status, 0) + 1

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(worker)
    result.seconds = time.perf_counter() - started
    return result


async def new_sessions(url: str, count: int) -> list[tuple[str, str]]:
    """`count` guest sessions on the chatd at `url`: (sessionId, sessionToken) each."""
    async with httpx.AsyncClient(base_url=url) as client:
        bodies = [(await client.post("/api/chat/session", json={})).json() for _ in range(count)]
    return [(body["sessionId"], body["sessionToken"]) for body in bodies]
