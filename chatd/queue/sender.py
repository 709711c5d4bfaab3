"""The one door to n8n: an HTTP POST with a hard deadline, no redirects and a capped body.

httpx errors are translated here into an Attempt with an error string. A request that fails on
a pooled keep-alive connection the server has just closed (n8n closes idle ones after ~5 s) is
sent again at once on a fresh connection and does not count as a failed attempt.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import trio

# Errors that mean "the connection died under us before an answer", not "n8n failed".
_STALE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


@dataclass(frozen=True)
class Attempt:
    status: int | None
    headers: Mapping[str, str]
    body: bytes
    error: str | None  # set when there is no status: timeout, refused, ...
    truncated: bool  # the body was longer than the cap
    seconds: float


@dataclass(frozen=True)
class SenderConfig:
    timeout: float = 10.0
    connect_timeout: float = 5.0
    max_body_bytes: int = 1 << 20
    max_connections: int = 64


class WebhookSender:
    def __init__(self, client: httpx.AsyncClient, config: SenderConfig) -> None:
        self._client = client
        self._config = config

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Attempt:
        started = time.perf_counter()
        try:
            with trio.fail_after(self._config.timeout):
                try:
                    return await self._post_once(url, body, headers, started)
                except _STALE:
                    return await self._post_once(url, body, headers, started)
        except trio.TooSlowError:
            error = f"timeout after {self._config.timeout:g}s"
        except httpx.ConnectError as exc:
            error = f"connection failed: {exc or type(exc).__name__}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        return Attempt(None, {}, b"", error, False, time.perf_counter() - started)

    async def _post_once(
        self, url: str, body: bytes, headers: Mapping[str, str], started: float
    ) -> Attempt:
        request = self._client.build_request("POST", url, content=body, headers=dict(headers))
        response = await self._client.send(request, stream=True, follow_redirects=False)
        cap = self._config.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                size = int(declared)  # refused unread: closing drops the connection
            else:
                # Read to the end (stopping early leaks httpx's stream generators), keeping at
                # most `cap` bytes; the request's deadline bounds how long this can take.
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size <= cap:
                        chunks.append(chunk)
        finally:
            await response.aclose()
        truncated = size > cap
        return Attempt(
            response.status_code,
            dict(response.headers),
            b"".join(chunks),
            None,
            truncated,
            time.perf_counter() - started,
        )


@asynccontextmanager
async def open_sender(config: SenderConfig) -> AsyncIterator[WebhookSender]:
    limits = httpx.Limits(
        max_connections=config.max_connections,
        max_keepalive_connections=config.max_connections,
        keepalive_expiry=4.0,  # below n8n's ~5 s idle close, so we rarely reuse a dying socket
    )
    timeout = httpx.Timeout(config.timeout, connect=config.connect_timeout)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, follow_redirects=False) as client:
        yield WebhookSender(client, config)
