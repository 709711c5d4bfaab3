"""The load generator's HTTP: one keep-alive connection per transport, at most N in use at once.

One httpx client shared by every shopper keeps all connections in one pool, and httpx scans the
whole pool (a poll() per idle connection) on each request and release: with a hundred
connections that scan, not chatd, is what a run measures. A transport per connection keeps the
scan to one; the most recently used one is handed out first, so its connection is warm. Requests
go straight to the transport, as chatd's webhook senders do: the client layers above it
(cookies, redirects, auth, URL merging) cost a third of each request and a load generator needs
none of them. It connects directly: proxy settings in the environment are not used.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import trio


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


class HttpClients:
    def __init__(self, base_url: str, *, connections: int, timeout: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeouts = httpx.Timeout(timeout).as_dict()
        self._slots = trio.Semaphore(connections)
        self._idle: list[httpx.AsyncHTTPTransport] = []
        self._all: list[httpx.AsyncHTTPTransport] = []
        self._tls = httpx.create_ssl_context()  # the CA bundle loaded once, not per transport
        self._limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def post(
        self, path: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> Answer:
        """POST `body` as JSON to `path`, waiting while `connections` are in use; httpx errors
        (connect, timeout, protocol) propagate."""
        request = httpx.Request(
            "POST",
            self._base_url + path,
            content=json.dumps(body, separators=(",", ":")).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
            extensions={"timeout": self._timeouts},
        )
        async with self._slots:
            transport = self._idle.pop() if self._idle else self._open()
            try:
                response = await transport.handle_async_request(request)
                try:
                    content = await response.aread()
                finally:
                    await response.aclose()
            finally:
                self._idle.append(transport)
        return Answer(response.status_code, content)

    def _open(self) -> httpx.AsyncHTTPTransport:
        transport = httpx.AsyncHTTPTransport(verify=self._tls, limits=self._limits)
        self._all.append(transport)
        return transport

    async def aclose(self) -> None:
        for transport in self._all:
            await transport.aclose()


@asynccontextmanager
async def open_http_clients(
    base_url: str, *, connections: int, request_seconds: float
) -> AsyncIterator[HttpClients]:
    clients = HttpClients(base_url, connections=connections, timeout=request_seconds)
    try:
        yield clients
    finally:
        with trio.CancelScope(shield=True):
            await clients.aclose()
