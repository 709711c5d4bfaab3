"""A Server-Sent Events client for tests, on a raw socket: httpx's streaming iterators cannot
be left early without leaking their generators (and the suite turns that warning into an error).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio


@dataclass(frozen=True)
class SseEvent:
    id: str | None
    type: str
    data: dict[str, Any]


class SseStream:
    def __init__(self, stream: trio.SocketStream, buffered: bytes) -> None:
        self._stream = stream
        self._raw = buffered  # chunked transfer coding, not yet decoded
        self._text = ""
        self.comments: list[str] = []

    async def next(self, seconds: float = 5.0) -> SseEvent | None:
        """The next event (comments are collected, not returned); None when the stream ends."""
        with trio.fail_after(seconds):
            while True:
                while "\n\n" not in self._text:
                    if not await self._more():
                        return None
                block, self._text = self._text.split("\n\n", 1)
                fields: dict[str, str] = {}
                for line in block.split("\n"):
                    if line.startswith(":"):
                        self.comments.append(line[1:].strip())
                    else:
                        name, _, value = line.partition(": ")
                        fields[name] = value
                if "data" in fields:
                    data = json.loads(fields["data"])
                    return SseEvent(fields.get("id"), fields.get("event", "message"), data)

    async def _more(self) -> bool:
        while True:
            size_line, sep, rest = self._raw.partition(b"\r\n")
            if sep:
                size = int(size_line, 16)
                if size == 0:
                    return False
                if len(rest) >= size + 2:
                    self._text += rest[:size].decode()
                    self._raw = rest[size + 2 :]
                    return True
            data = await self._stream.receive_some()
            if not data:
                return False
            self._raw += data


@asynccontextmanager
async def open_sse(http_url: str, path: str, headers: dict[str, str]) -> AsyncIterator[SseStream]:
    """GET `path` as an event stream; asserts a 200 text/event-stream answer."""
    host, port = http_url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in head:
                head += await stream.receive_some()
        head, _, body = head.partition(b"\r\n\r\n")
        status, *header_lines = head.decode().split("\r\n")
        assert status.startswith("HTTP/1.1 200"), status
        lowered = [h.lower() for h in header_lines]
        assert "content-type: text/event-stream; charset=utf-8" in lowered, lowered
        assert "transfer-encoding: chunked" in lowered, lowered
        yield SseStream(stream, body)
