"""A stand-in for chatd's real-time side in browser tests: a real server on 127.0.0.1 (plain ASGI
on hypercorn) speaking chatd/PROTOCOL.md's WebSocket, SSE and long-poll, whose every event the
test writes. For what chatd does not send yet, or only at moments a test cannot pick: a reply
streamed piece by piece, a reconnect in the middle of one. It serves /widget.js as chatd does.

    standin = await StandIn.start(nursery)       # standin.url = "http://127.0.0.1:PORT"
    conn = await standin.connection()            # the next WebSocket (joined) or SSE stream
    await conn.send({"type": "message_delta", ...})
    await conn.close(1001)                       # WebSocket: that close code; SSE: stream ends
    standin.answer_poll({"messages": [...], "streaming": [...], "streamVersion": 2})
    standin.polls                                # each long-poll's query, in order

A long-poll gets the next answer queued (waiting up to its `wait`), else no messages and the
last `streaming` and `streamVersion` answered. With `refuse_stream_version`, a poll sending
streamVersion gets chatd's 400 for an unknown parameter (a chatd without streaming).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import trio
from hypercorn.config import Config
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from chatd.http.routes_web import widget_source

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]

_QUIET = logging.getLogger("tests.standin")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-headers", b"authorization, content-type"),
    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
]


@dataclass
class Connection:
    kind: str  # "websocket" or "sse"
    join: Message  # the join_chat frame; for SSE, the query (lastSeq)
    frames: list[Message] = field(default_factory=list)  # what the widget sent after joining
    ended: trio.Event = field(default_factory=trio.Event)
    _out: trio.MemorySendChannel[Message | int] | None = None

    async def send(self, *events: Message) -> None:
        assert self._out is not None
        for event in events:
            await self._out.send(event)

    async def close(self, code: int = 1001) -> None:
        assert self._out is not None
        await self._out.send(code)
        await self.ended.wait()


class StandIn:
    def __init__(self) -> None:
        self.url = ""
        self.polls: list[dict[str, str]] = []
        self.refuse_stream_version = False
        self._connections_in, self._connections = trio.open_memory_channel[Connection](16)
        self._answers_in, self._answers = trio.open_memory_channel[Message](16)
        self._last: Message = {"streaming": [], "streamVersion": 0}

    @classmethod
    async def start(cls, nursery: trio.Nursery) -> StandIn:
        standin = cls()
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.errorlog = _QUIET
        app = wrap_app(standin._asgi, config.wsgi_max_body_size, "asgi")  # type: ignore[arg-type]
        binds: list[str] = await nursery.start(worker_serve, app, config)
        standin.url = binds[0]
        return standin

    async def connection(self, timeout: float = 10) -> Connection:
        with trio.fail_after(timeout):
            return await self._connections.receive()

    def answer_poll(self, body: Message) -> None:
        self._answers_in.send_nowait(body)

    async def _asgi(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            return await send({"type": "lifespan.shutdown.complete"})
        if scope["type"] == "websocket":
            return await self._websocket(receive, send)
        query = dict(parse_qsl(scope["query_string"].decode()))
        path, method = scope["path"], scope["method"]
        if method == "OPTIONS":
            return await _respond(send, 204, b"")
        if path == "/widget.js":
            return await _respond(send, 200, widget_source(), b"application/javascript")
        if path.startswith("/api/chat/events/"):
            return await self._sse(query, receive, send)
        if path.startswith("/api/chat/messages/"):
            return await self._poll(query, send)
        await _respond(send, 404, b'{"error": {"code": "not_found"}}')

    async def _websocket(self, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        first = await receive()
        if first["type"] != "websocket.receive":
            return
        join = json.loads(first["text"])
        await send({"type": "websocket.send", "text": json.dumps(_joined(join))})
        out, events = trio.open_memory_channel[Message | int](64)
        conn = Connection("websocket", join, _out=out)
        await self._connections_in.send(conn)
        try:
            async with trio.open_nursery() as nursery:

                async def read() -> None:
                    while (frame := await receive())["type"] == "websocket.receive":
                        conn.frames.append(json.loads(frame["text"]))
                    nursery.cancel_scope.cancel()  # the widget went

                nursery.start_soon(read)
                async for event in events:
                    if isinstance(event, int):
                        await send({"type": "websocket.close", "code": event})
                        break
                    await send({"type": "websocket.send", "text": json.dumps(event)})
                nursery.cancel_scope.cancel()
        finally:
            conn.ended.set()

    async def _sse(self, query: dict[str, str], receive: Receive, send: Send) -> None:
        out, events = trio.open_memory_channel[Message | int](64)
        conn = Connection("sse", query, _out=out)
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": 200, "headers": headers + CORS})
        await send({"type": "http.response.body", "body": b": hello\n\n", "more_body": True})
        await self._connections_in.send(conn)
        try:
            async with trio.open_nursery() as nursery:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch)
                async for event in events:
                    if isinstance(event, int):
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                        break
                    chunk = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                nursery.cancel_scope.cancel()
        finally:
            conn.ended.set()

    async def _poll(self, query: dict[str, str], send: Send) -> None:
        self.polls.append(query)
        if self.refuse_stream_version and "streamVersion" in query:
            error = {"code": "unknown_field", "message": "unknown", "field": "streamVersion"}
            return await _respond(send, 400, json.dumps({"error": error}).encode())
        body: Message = {"messages": []}
        try:
            body = self._answers.receive_nowait()
        except trio.WouldBlock:
            with trio.move_on_after(float(query.get("wait", "0"))):
                body = await self._answers.receive()
        self._last = {key: body.get(key, self._last[key]) for key in self._last}
        answer = {"messages": [], "pagination": {}, **self._last, **body}
        await _respond(send, 200, json.dumps(answer).encode())


def _joined(join: Message) -> Message:
    return {
        "type": "joined",
        "sessionId": join.get("sessionId"),
        "lastSeq": join.get("lastSeq", 0),
        "heartbeatIntervalSeconds": 30,
    }


async def _respond(send: Send, status: int, body: bytes, kind: bytes = b"application/json") -> None:
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *CORS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
