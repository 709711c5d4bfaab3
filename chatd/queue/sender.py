"""The one door to n8n: an HTTP POST with hard deadlines, no redirects and a capped body.

httpx errors are translated here into an Attempt with an error string. A request that fails on
a pooled keep-alive connection the server has just closed (n8n closes idle ones after ~5 s) is
sent again at once on a fresh connection and does not count as a failed attempt; that is only
possible before any of the answer came.

A whole reply (a body with Content-Length, or any non-2xx answer) must arrive within `timeout`,
connect to last byte. A streamed reply (n8n's "Streaming" response mode answers 200 and its
headers at once, then newline-delimited JSON as the workflow runs) only needs its headers within
`timeout`; then it may run for `stream_max_seconds`, as long as it never goes
`stream_idle_timeout` without a byte. A 2xx answer without Content-Length is read under those
stream rules until its first line says what it is (chatd.core.n8n_stream.starts_stream): a
stream goes to the consumer chunk by chunk as it arrives, anything else is a whole reply.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import trio

from chatd.core.n8n_stream import MAX_LINE_BYTES, is_ndjson, starts_stream

# Errors that mean "the connection died under us before an answer", not "n8n failed".
_STALE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


@dataclass(frozen=True)
class Attempt:
    status: int | None
    headers: Mapping[str, str]
    body: bytes  # a whole reply's (empty for a stream: its chunks went to the consumer)
    error: str | None  # set when there is no status: timeout, refused, ...
    truncated: bool  # the body was longer than the cap
    seconds: float
    streamed: bool = False  # the answer was a stream, fed to the consumer
    stream_error: str | None = None  # why a stream was not read to its end (None: it was)


@dataclass(frozen=True)
class SenderConfig:
    timeout: float = 10.0
    connect_timeout: float = 5.0
    max_body_bytes: int = 1 << 20
    stream_idle_timeout: float = 60.0
    stream_max_seconds: float = 300.0


class StreamConsumer(Protocol):
    def opened(self) -> None:
        """The answer's headers came and it is read under the stream rules (it may be long)."""
        ...

    def feed(self, data: bytes) -> bool:
        """The next bytes of a streamed answer; False: stop reading (the stream failed)."""
        ...


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
        # Trio's deadlines bound every read (a whole answer's, a stream's silence and length):
        # httpx's own read timeout is only a backstop beyond them, else a stream's pause
        # longer than `timeout` (an agent calling a tool) would fail it as a cut connection.
        self._timeouts = httpx.Timeout(
            config.timeout,
            connect=config.connect_timeout,
            read=config.timeout + config.stream_idle_timeout,
        ).as_dict()
        self._url_text, self._url = "", httpx.URL()  # the target, parsed once

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        consumer: StreamConsumer | None = None,  # None: every answer is read whole
    ) -> Attempt:
        started = time.perf_counter()
        deadline = trio.current_time() + self._config.timeout
        try:
            with trio.fail_at(deadline):
                try:
                    response = await self._open(url, body, headers)
                except _STALE:
                    response = await self._open(url, body, headers)
        except trio.TooSlowError:
            return self._failed(f"timeout after {self._config.timeout:g}s", started)
        except httpx.ConnectError as exc:
            return self._failed(f"connection failed: {str(exc) or type(exc).__name__}", started)
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__}: {exc}", started)
        try:
            if consumer is not None and _may_stream(response):
                return await self._read_stream(response, consumer, started)
            return await self._read_whole(response, deadline, started)
        finally:
            with trio.CancelScope(shield=True):  # closing drops a connection read halfway
                await response.aclose()

    def _failed(self, error: str, started: float) -> Attempt:
        return Attempt(None, {}, b"", error, False, time.perf_counter() - started)

    async def _open(self, url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        """Send the request; the answer's status and headers (its body still to read)."""
        if url != self._url_text:
            self._url_text, self._url = url, httpx.URL(url)
        request = httpx.Request(
            "POST", self._url, content=body, headers=headers, extensions={"timeout": self._timeouts}
        )
        return await self._transport.handle_async_request(request)

    async def _read_whole(
        self, response: httpx.Response, deadline: float, started: float
    ) -> Attempt:
        cap = self._config.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        try:
            with trio.fail_at(deadline):
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > cap:
                    size = int(declared)  # refused unread: closing drops the connection
                else:
                    # Read to the end (stopping early leaks httpx's stream generators),
                    # keeping at most `cap` bytes; the deadline bounds how long this can take.
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size <= cap:
                            chunks.append(chunk)
        except trio.TooSlowError:
            return self._failed(f"timeout after {self._config.timeout:g}s", started)
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__}: {exc}", started)
        return Attempt(
            response.status_code,
            dict(response.headers),
            b"".join(chunks),
            None,
            size > cap,
            time.perf_counter() - started,
        )

    async def _read_stream(
        self, response: httpx.Response, consumer: StreamConsumer, started: float
    ) -> Attempt:
        """Read under the stream rules; feed a stream to `consumer` as it comes. A reason to
        stop cancels the read, so httpx's generators end by that exception, not half-iterated.
        """
        config = self._config
        consumer.opened()
        now = trio.current_time()
        end_by = now + config.stream_max_seconds
        kind = "stream" if is_ndjson(response.headers.get("content-type", "")) else None
        head: list[bytes] = []  # until the first line says what this answer is, and after: whole
        size, error = 0, None
        reading = trio.CancelScope(deadline=min(now + config.stream_idle_timeout, end_by))
        # The idle deadline is pushed on at most this often: it may end a silence up to this
        # much early, never late.
        pushed, push_every = now, min(1.0, config.stream_idle_timeout / 10)
        with reading:
            try:
                async for chunk in response.aiter_bytes():
                    if error is not None:
                        continue  # stopping: these were read already; the cancel lands next
                    at = trio.current_time()
                    if at >= pushed + push_every:  # not per chunk: a deadline moves at a cost
                        reading.deadline = min(at + config.stream_idle_timeout, end_by)
                        pushed = at
                    size += len(chunk)
                    if size > config.max_body_bytes:
                        error = f"the answer is larger than {config.max_body_bytes} bytes"
                    elif kind == "stream":
                        if not consumer.feed(chunk):
                            error = "the stream failed"
                    else:
                        head.append(chunk)
                        kind = kind or _kind(head)
                        if kind == "stream" and not consumer.feed(b"".join(head)):
                            error = "the stream failed"
                    if error is not None:
                        reading.cancel()
            except httpx.HTTPError as exc:
                error = f"the connection was cut: {type(exc).__name__}: {exc}"
        if reading.cancelled_caught and error is None:
            if trio.current_time() >= end_by:
                error = f"the answer ran longer than {config.stream_max_seconds:g}s"
            else:
                error = f"nothing came for {config.stream_idle_timeout:g}s"
        seconds = time.perf_counter() - started
        status, headers = response.status_code, dict(response.headers)
        if kind == "stream":
            return Attempt(status, headers, b"", None, False, seconds, True, error)
        too_large = size > config.max_body_bytes
        if error is not None and not too_large:  # cut, or too slow: as if no answer came
            return Attempt(None, {}, b"", error, False, seconds)
        body = b"".join(head)[: config.max_body_bytes]
        return Attempt(status, headers, body, None, too_large, seconds)


def _may_stream(response: httpx.Response) -> bool:
    """Whether this answer may be n8n's stream: a 2xx without Content-Length (n8n streams
    chunked, and says application/json), whose first line will tell."""
    return 200 <= response.status_code <= 299 and "content-length" not in response.headers


def _kind(head: list[bytes]) -> str | None:
    """ "stream" or "whole" for the answer begun with `head`; None while it cannot say yet."""
    data = b"".join(head) if len(head) > 1 else head[0]
    first, newline, _rest = data.lstrip().partition(b"\n")
    if newline:
        return "stream" if starts_stream(first) else "whole"
    if len(data) > MAX_LINE_BYTES:
        return "whole"  # no stream's first line is that long
    if data.strip()[:1] not in (b"", b"{"):
        return "whole"  # an HTML page, an array, text
    return None


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
