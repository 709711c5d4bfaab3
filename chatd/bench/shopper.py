"""A virtual shopper: a session over HTTP, its events over a WebSocket, messages sent over HTTP
(the widget's paths), each reply awaited on the WebSocket before the next message.

With one message outstanding per shopper, the reply to message n is the first bot (or system)
message with a higher seq: per-session FIFO guarantees n8n answers in order.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    HandshakeError,
    WebSocketConnection,
    wrap_client_stream,
)

from chatd.bench.http import HttpClients
from chatd.bench.stats import LIMITS, Tally


class ShopperFailed(Exception):
    """This shopper cannot go on (its error is already counted)."""


# What the network, the server or the WebSocket library may end one shopper with.
CONNECTION_ERRORS = (
    HandshakeError,
    ConnectionTimeout,
    ConnectionClosed,
    trio.BrokenResourceError,
    OSError,
    httpx.HTTPError,
)


@contextmanager
def one_shopper(tally: Tally) -> Iterator[list[bool]]:
    """A failure ends this shopper only, counted by kind; the list gets True if it failed."""
    failed: list[bool] = []
    try:
        yield failed
    except* ShopperFailed:
        failed.append(True)
    except* CONNECTION_ERRORS as group:
        failed.append(True)
        for exc in group.exceptions:
            tally.errors[_error_kind(exc)] += 1


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRejected):
        return f"ws_rejected_{exc.status_code}"
    return type(exc).__name__


@dataclass(frozen=True)
class Target:
    url: str  # chatd's base URL, e.g. http://127.0.0.1:8000
    origin: str  # the Origin header for the WebSocket (must be in chatd's allow-list)
    run_id: str  # tags the sessions this run creates (metadata.bench)
    message_size: int
    reply_timeout: float

    @classmethod
    def make(
        cls, url: str, *, origin: str | None, message_size: int, reply_timeout: float
    ) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url must be http(s)://host[:port], got {url!r}")
        base = f"{parts.scheme}://{parts.netloc}"
        return cls(base, origin or base, uuid.uuid4().hex[:12], message_size, reply_timeout)

    def content(self, n: int) -> str:
        text = f"bench message {n} "
        return (text * (self.message_size // len(text) + 1))[: self.message_size]


@dataclass
class Joined:
    session_id: str
    token: str
    ws: WebSocketConnection
    replies: trio.MemoryReceiveChannel[dict[str, Any]]  # bot and system messages, in order


class Shopper:
    def __init__(
        self,
        target: Target,
        http: HttpClients,
        tally: Tally,
        handshakes: trio.Semaphore | None = None,  # bounds concurrent joins (accept backlog)
    ) -> None:
        self._target = target
        self._http = http
        self._tally = tally
        self._handshakes = handshakes

    @asynccontextmanager
    async def joined(self) -> AsyncIterator[Joined]:
        """A new session, joined over a WebSocket, for the block."""
        slot = self._handshakes
        if slot is not None:
            await slot.acquire()

        def handshake_done() -> None:
            nonlocal slot
            if slot is not None:
                slot.release()
                slot = None

        try:
            body = {"metadata": {"bench": self._target.run_id}}
            created = await self._post("/api/chat/session", body)
            self._tally.sessions += 1
            session_id, token = created["sessionId"], created["sessionToken"]
            async with self._websocket() as ws:
                try:
                    join = {"type": "join_chat", "sessionId": session_id, "sessionToken": token}
                    await ws.send_message(json.dumps(join))
                    with trio.fail_after(self._target.reply_timeout):
                        while (event := json.loads(await ws.get_message()))["type"] != "joined":
                            pass
                except (ConnectionClosed, trio.TooSlowError) as exc:
                    self._fail(exc)
                handshake_done()
                # Pings keep the connection alive: chatd closes a client silent for two intervals.
                ping_every = float(event["heartbeatIntervalSeconds"]) * 0.8
                send, receive = trio.open_memory_channel[dict[str, Any]](64)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read, ws, send, ping_every)
                    yield Joined(session_id, token, ws, receive)
                    nursery.cancel_scope.cancel()
        finally:
            handshake_done()

    async def converse(self, joined: Joined, n: int) -> bool:
        """Send message `n` and wait for its reply; False when it did not come (lost)."""
        started = time.perf_counter()
        answer = await self._post(
            "/api/chat/send",
            {
                "sessionId": joined.session_id,
                "content": self._target.content(n),
                "clientMessageId": f"{self._target.run_id}-{uuid.uuid4().hex}",
            },
            token=joined.token,
        )
        self._tally.acked += 1
        self._tally.ack_latency.append(time.perf_counter() - started)
        with trio.move_on_after(self._target.reply_timeout):
            while True:
                reply = await joined.replies.receive()
                if reply["seq"] > answer["seq"]:
                    break
            self._tally.replies += 1
            self._tally.reply_latency.append(time.perf_counter() - started)
            if (reply.get("metadata") or {}).get("fallback"):
                self._tally.errors["fallback_reply"] += 1  # n8n (the sink) failed for good
            return True
        return False

    async def _post(self, path: str, body: dict[str, Any], token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if path.endswith("/send"):
            self._tally.sent += 1
        try:
            response = await self._http.post(path, body, headers)
        except httpx.HTTPError as exc:
            self._fail(exc)
        if response.status != 200:
            self._tally.errors[f"http_{response.status}"] += 1
            if response.status == 429 and path in LIMITS:
                self._tally.limited[LIMITS[path][0]] += 1
            raise ShopperFailed(response.text[:200])
        return response.json()

    @asynccontextmanager
    async def _websocket(self) -> AsyncIterator[WebSocketConnection]:
        """trio-websocket's client leaves the TCP stream open when the server closes: we own it."""
        parts = urlsplit(self._target.url)
        secure = parts.scheme == "https"
        host, port = parts.hostname or "", parts.port or (443 if secure else 80)
        try:
            stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]
            stream = await trio.open_tcp_stream(host, port)
            if secure:
                stream = trio.SSLStream(stream, ssl.create_default_context(), server_hostname=host)
        except OSError as exc:
            self._fail(exc)
        async with stream, trio.open_nursery() as nursery:
            try:
                ws = await wrap_client_stream(
                    nursery,
                    stream,
                    parts.netloc,
                    "/api/chat/ws",
                    extra_headers=[(b"Origin", self._target.origin.encode())],
                )
            except (HandshakeError, ConnectionTimeout, trio.BrokenResourceError, OSError) as exc:
                self._fail(exc)
            try:
                yield ws
            finally:
                with trio.move_on_after(1):
                    await ws.aclose()
                nursery.cancel_scope.cancel()

    async def _read(
        self,
        ws: WebSocketConnection,
        replies: trio.MemorySendChannel[dict[str, Any]],
        ping_every: float,
    ) -> None:
        seen: set[str] = set()
        last_sent = trio.current_time()
        try:
            while True:
                with trio.move_on_after(max(0.0, last_sent + ping_every - trio.current_time())):
                    event = json.loads(await ws.get_message())
                    if event["type"] == "new_message":
                        message = event["message"]
                        if message["id"] in seen:
                            self._tally.duplicated += 1
                            continue
                        seen.add(message["id"])
                        if message["senderType"] != "user":
                            await replies.send(message)
                    continue
                await ws.send_message('{"type":"ping"}')  # the app-level heartbeat
                last_sent = trio.current_time()
        except ConnectionClosed as exc:
            reason = exc.reason
            code = reason.code if reason is not None else "none"
            if code not in (1000, 1001):
                self._tally.errors[f"ws_closed_{code}"] += 1

    def _fail(self, exc: BaseException) -> NoReturn:
        self._tally.errors[_error_kind(exc)] += 1
        raise ShopperFailed(str(exc)) from exc
