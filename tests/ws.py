"""A WebSocket client for tests (trio-websocket): open, join, read events by type."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from tests.chat import Session


@asynccontextmanager
async def open_ws(
    http_url: str,
    *,
    origin: str | None = "",
    path: str = "/api/chat/ws",
    cookie: str | None = None,
    **kwargs: Any,
) -> AsyncIterator[WebSocketConnection]:
    """`origin` "" means the server's own (allowed by default); None sends no Origin header.

    The TCP stream is ours to close: trio-websocket's client leaves it open when the server
    ends the connection (it waits for the server's TCP close, then forgets the socket)."""
    headers = [] if origin is None else [(b"Origin", (origin or http_url).encode())]
    if cookie is not None:
        headers.append((b"Cookie", cookie.encode()))
    host, port = http_url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream, trio.open_nursery() as nursery:
        ws = await wrap_client_stream(
            nursery, stream, f"{host}:{port}", path, extra_headers=headers, **kwargs
        )
        try:
            yield ws
        finally:
            await ws.aclose()


async def send(ws: WebSocketConnection, frame: dict[str, Any]) -> None:
    await ws.send_message(json.dumps(frame))


async def receive(ws: WebSocketConnection, seconds: float = 5.0) -> dict[str, Any]:
    """The next event that is not a heartbeat."""
    with trio.fail_after(seconds):
        while True:
            event: dict[str, Any] = json.loads(await ws.get_message())
            if event["type"] != "heartbeat":
                return event


async def receive_type(ws: WebSocketConnection, kind: str, seconds: float = 5.0) -> dict[str, Any]:
    """The next event of type `kind`, skipping others."""
    with trio.fail_after(seconds):
        while (event := await receive(ws, seconds))["type"] != kind:
            pass
        return event


async def join(ws: WebSocketConnection, session: Session, last_seq: int = 0) -> dict[str, Any]:
    await send(
        ws,
        {
            "type": "join_chat",
            "sessionId": session.id,
            "sessionToken": session.token,
            "lastSeq": last_seq,
        },
    )
    joined = await receive(ws)
    assert joined["type"] == "joined", joined
    return joined


async def messages_until(ws: WebSocketConnection, seq: int, seconds: float = 5.0) -> list[int]:
    """The seqs of new_message events received until `seq` (other events skipped)."""
    seqs: list[int] = []
    with trio.fail_after(seconds):
        while not seqs or seqs[-1] < seq:
            event = await receive(ws, seconds)
            if event["type"] == "new_message":
                seqs.append(event["message"]["seq"])
    return seqs


async def close_code(ws: WebSocketConnection, seconds: float = 5.0) -> int | None:
    """Read until the server closes; its close code."""
    with trio.fail_after(seconds):
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed as closed:
            return closed.reason.code


def masked_text_frame(payload: bytes) -> bytes:
    """A final text frame from a client (masked, as RFC 6455 requires), payload < 126 bytes."""
    assert len(payload) < 126
    mask = b"\x01\x02\x03\x04"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


@asynccontextmanager
async def raw_joined(
    http_url: str, session: Session | None = None
) -> AsyncIterator[tuple[trio.SocketStream, WSConnection]]:
    """A WebSocket opened with wsproto on a stream of our own, joined to `session` if given:
    for what trio-websocket cannot do (send bad UTF-8, stop reading)."""
    host, port = http_url.removeprefix("http://").split(":")
    connection = WSConnection(ConnectionType.CLIENT)
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        request = Request(
            host=f"{host}:{port}",
            target="/api/chat/ws",
            extra_headers=[(b"Origin", http_url.encode())],
        )
        await stream.send_all(connection.send(request))
        ready = False
        while not ready:
            data = await stream.receive_some()
            assert data, "the server closed the connection before it was ready"
            connection.receive_data(data)
            for event in connection.events():
                if isinstance(event, AcceptConnection):
                    ready = session is None
                    if session is not None:
                        join = {
                            "type": "join_chat",
                            "sessionId": session.id,
                            "sessionToken": session.token,
                        }
                        await stream.send_all(connection.send(TextMessage(json.dumps(join))))
                else:
                    assert isinstance(event, TextMessage), event
                    assert json.loads(event.data)["type"] == "joined", event
                    ready = True
        yield stream, connection


async def raw_frame_close_code(
    http_url: str, frame: bytes, session: Session | None = None, seconds: float = 5.0
) -> int | None:
    """Open a WebSocket with wsproto, join `session` if given (so `frame` reaches a joined
    connection), send `frame` (raw, already masked bytes) and return the close code the server
    answers with: for frames trio-websocket cannot produce (bad UTF-8)."""
    with trio.fail_after(seconds):
        async with raw_joined(http_url, session) as (stream, connection):
            await stream.send_all(frame)
            while data := await stream.receive_some():
                connection.receive_data(data)
                for event in connection.events():
                    if isinstance(event, CloseConnection):
                        return event.code
    return None
