"""A lean WebSocket client connection: wsproto over one Trio socket, no task or nursery of its own.

trio-websocket spends a nursery and a reader task per connection; a load client holding 10,000
connections in one process wants the bare minimum: the socket, the wsproto state machine, and
whoever calls `receive_texts` (one task per connection, which also sends on it). Control frames
are answered inline; a close from the server raises `Closed` with its code.

With `stamp_arrivals`, the kernel stamps each chunk as it reaches the socket (SO_TIMESTAMPNS,
CLOCK_REALTIME) and `arrived` is the stamp of the last chunk read: when the server's data got
here, however long this busy process then took to look at it.
"""

from __future__ import annotations

import socket
import struct
from contextlib import suppress
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

RECEIVE_BYTES = 65536
# Linux (asm-generic/socket.h); Python's socket module does not name them.
SO_TIMESTAMPNS = SCM_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("@qq")  # struct timespec on a 64-bit system
ANCILLARY_BYTES = socket.CMSG_SPACE(TIMESPEC.size)


class Closed(Exception):
    """The connection ended: `code` is the close code, or a word for what happened instead."""

    def __init__(self, code: int | str) -> None:
        super().__init__(code)
        self.code = code


class Connection:
    __slots__ = ("_partial", "arrived", "stamped", "stream", "ws")

    def __init__(self, stream: trio.SocketStream, ws: WSConnection, stamped: bool) -> None:
        self.stream = stream
        self.ws = ws
        self.stamped = stamped
        self.arrived = 0.0  # time.time() scale; set by each read when stamped
        self._partial = ""

    async def send_text(self, text: str) -> None:
        await self.stream.send_all(self.ws.send(TextMessage(data=text)))

    async def send_texts(self, texts: list[str]) -> None:
        """Several frames in one write."""
        await self.stream.send_all(b"".join(self.ws.send(TextMessage(data=t)) for t in texts))

    async def receive_texts(self) -> list[str]:
        """The next text messages: those already buffered (a frame can arrive right behind the
        handshake's 101), else those in the next chunk from the socket (possibly none)."""
        try:
            texts = await self._handle_events()
            if texts:
                return texts
            data = await self._receive()
            self.ws.receive_data(data or None)
            texts = await self._handle_events()
        except RemoteProtocolError:
            raise Closed("protocol error") from None
        if not data:
            raise Closed("eof")
        return texts

    async def _receive(self) -> bytes:
        if not self.stamped:
            return await self.stream.receive_some(RECEIVE_BYTES)
        data, ancillary, _flags, _address = await self.stream.socket.recvmsg(
            RECEIVE_BYTES, ANCILLARY_BYTES
        )
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                seconds, nanoseconds = TIMESPEC.unpack(payload[: TIMESPEC.size])
                self.arrived = seconds + nanoseconds / 1e9
        return data

    async def _handle_events(self) -> list[str]:
        texts: list[str] = []
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                if event.message_finished:
                    texts.append(self._partial + event.data)
                    self._partial = ""
                else:
                    self._partial += event.data
            elif isinstance(event, Ping):
                await self.stream.send_all(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                # The socket may be gone already; the code is what matters.
                with suppress(LocalProtocolError, trio.BrokenResourceError):
                    await self.stream.send_all(self.ws.send(event.response()))
                raise Closed(event.code)
        return texts

    async def aclose(self) -> None:
        await self.stream.aclose()


async def connect(url: str, origin: str | None, *, stamp_arrivals: bool = False) -> Connection:
    """Open the socket and complete the handshake; `Closed("http <status>")` if refused."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    try:
        if stamp_arrivals:
            stream.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        ws = WSConnection(ConnectionType.CLIENT)
        headers = [(b"Origin", origin.encode())] if origin else []
        request = Request(host=parts.netloc, target=parts.path or "/", extra_headers=headers)
        await stream.send_all(ws.send(request))
        while True:
            data = await stream.receive_some(RECEIVE_BYTES)
            try:
                ws.receive_data(data or None)
            except RemoteProtocolError:
                raise Closed("eof during handshake" if not data else "bad handshake") from None
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    # Frames right behind the 101 stay buffered in `ws` for receive_texts.
                    return Connection(stream, ws, stamp_arrivals)
                if isinstance(event, RejectConnection):
                    raise Closed(f"http {event.status_code}")
            if not data:
                raise Closed("eof during handshake")
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
