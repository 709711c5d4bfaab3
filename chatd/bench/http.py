"""The load generator's HTTP clients: one keep-alive connection each, at most N in use at once.

One httpx client shared by every shopper keeps all connections in one pool, and httpx scans the
whole pool (a poll() per idle connection) on each request and release: with a hundred
connections that scan, not chatd, is what a run measures. A client per connection keeps the
scan to one; the most recently used client is handed out first, so its connection is warm.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import trio


class HttpClients:
    def __init__(self, base_url: str, *, connections: int, timeout: float) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._slots = trio.Semaphore(connections)
        self._idle: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []
        self._tls = httpx.create_ssl_context()  # the CA bundle loaded once, not per client

    @asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        """A client for one request (or a few), waiting while `connections` are in use."""
        async with self._slots:
            client = self._idle.pop() if self._idle else self._open()
            try:
                yield client
            finally:
                self._idle.append(client)

    def _open(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            base_url=self._base_url,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=self._timeout,
            verify=self._tls,
        )
        self._all.append(client)
        return client

    async def aclose(self) -> None:
        for client in self._all:
            await client.aclose()


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
