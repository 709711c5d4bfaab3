"""The one door to n8n: an HTTP POST with a hard deadline, no redirects and a capped body.

httpx errors are translated here into an Attempt with an error string. A request that fails on
a pooled keep-alive connection the server has just closed (n8n closes idle ones after ~5 s) is
sent again at once on a fresh connection and does not count as a failed attempt.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

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


class WebhookSender:
    """One dispatcher worker's door to n8n, over its own keep-alive connection.

    The worker has one request in flight at a time, so one connection is all its pool holds:
    httpcore's pool scans every connection it keeps on each request (a poll() per idle one).
    Requests go straight to the httpx transport; the client layers above it (cookies, auth,
    redirects, default headers) are what a webhook call must not have, and cost a third of
    each call.
    """

    def __init__(self, transport: httpx.AsyncHTTPTransport, config: SenderConfig) -> None:
        self._transport = transport
        self._config = config
        self._timeouts = httpx.Timeout(config.timeout, connect=config.connect_timeout).as_dict()
        self._url_text, self._url = "", httpx.URL()  # the target, parsed once

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
            error = f"connection failed: {str(exc) or type(exc).__name__}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        return Attempt(None, {}, b"", error, False, time.perf_counter() - started)

    async def _post_once(
        self, url: str, body: bytes, headers: Mapping[str, str], started: float
    ) -> Attempt:
        if url != self._url_text:
            self._url_text, self._url = url, httpx.URL(url)
        request = httpx.Request(
            "POST", self._url, content=body, headers=headers, extensions={"timeout": self._timeouts}
        )
        response = await self._transport.handle_async_request(request)
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


def proxy_for(url: str) -> str | None:
    """The proxy the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) names for `url`, if any."""
    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy is None or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


@asynccontextmanager
async def open_senders(
    config: SenderConfig, url: str, count: int
) -> AsyncIterator[list[WebhookSender]]:
    """`count` senders to `url` (one per dispatcher worker), closed together on the way out."""
    limits = httpx.Limits(
        max_connections=1,
        max_keepalive_connections=1,
        keepalive_expiry=4.0,  # below n8n's ~5 s idle close, so we rarely reuse a dying socket
    )
    tls = httpx.create_ssl_context()  # loading the CA bundle once, not per connection pool
    async with AsyncExitStack() as stack:
        senders = []
        for _ in range(count):
            transport = httpx.AsyncHTTPTransport(verify=tls, limits=limits, proxy=proxy_for(url))
            await stack.enter_async_context(transport)
            senders.append(WebhookSender(transport, config))
        yield senders
