"""WebSocket /api/chat/ws: the protocol written down in chatd/PROTOCOL.md.

A joined connection is two tasks in one nursery: the reader (frames in) and the writer (the
session's events out, heartbeats when idle; shutdown reaches it through the hub). Neither keeps
a timer: the process's one Liveness task nudges the writer when a heartbeat is due and cancels
the reader of a peer silent for two intervals. Whichever ends the connection raises _Close with
the code the client is told; the other is cancelled. A peer that stops reading is dropped by the
kernel (TCP_USER_TIMEOUT, `server.send_timeout_seconds`: see component_config.py).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import structlog
import trio
from quart import Blueprint, Response, websocket

from chatd.core.frames import (
    ClientFrame,
    CloseCode,
    FrameError,
    FrameMeter,
    Join,
    Leave,
    Ping,
    SendFrame,
    Typing,
    TypingThrottle,
    encode_event,
    origin_allowed,
    parse_frame,
)
from chatd.core.messages import NewMessage
from chatd.core.tokens import token_hash
from chatd.db.sessions import SessionInfo
from chatd.errors import ClientError, DatabaseUnavailable, Forbidden
from chatd.http.body import client_ip
from chatd.http.openapi import Doc, documented
from chatd.http.services import Services
from chatd.realtime.hub import Closing, SlowConsumer
from chatd.realtime.stream import SessionStream

log = structlog.get_logger(__name__)

CLOSE_TIMEOUT = 1.0  # a peer that does not read gets no longer than this for our close frame


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason.encode()[:120].decode(errors="ignore")  # the frame allows 123


def ws_routes(services: Services) -> Blueprint:
    bp = Blueprint("ws", __name__)

    @bp.websocket("/api/chat/ws")
    @documented(
        Doc(
            "The chat WebSocket: join_chat, send_message, typing; events out (chatd/PROTOCOL.md)",
            "chat",
        )
    )
    async def chat_ws() -> Response | None:
        # Refused before the upgrade, as plain HTTP errors (the error handlers render them).
        origin = websocket.headers.get("Origin")
        allowed = services.state.allowed_origins
        if not origin_allowed(origin, allowed):
            services.refused_origins.refused(
                "websocket_origin_refused", origin, allowed, trio.current_time()
            )
            raise Forbidden(
                "this page's origin may not open a chat WebSocket; add it to"
                " websocket.allowed_origins",
                code="origin_not_allowed",
            )
        ip = client_ip(services.settings.server.proxy_trust, websocket)
        async with services.live_connections.hold(ip):
            await websocket.accept()
            services.websockets.opened()
            try:
                await Connection(services).run()
            finally:
                services.websockets.ended()
        return None

    return bp


class Connection:
    def __init__(self, services: Services) -> None:
        self._services = services
        config = services.settings.websocket
        self._interval = config.heartbeat_interval_seconds
        self._meter = FrameMeter(config.messages_per_second)
        self._typing = TypingThrottle()
        self._id = services.connection_id()
        self._session_id: str | None = None
        self._token_hash = b""
        # When a frame last went out, and came in (for the Liveness task). A `heartbeat` is due
        # only after an interval without any frame out (a pong or an event says "alive" too).
        self.last_sent = self.last_received = trio.current_time()
        self._stream: SessionStream | None = None
        self._reading = trio.CancelScope()  # cancelled when the peer has gone silent

    async def run(self) -> None:
        try:
            join, session = await self._join()
            self._session_id = join.session_id
            structlog.contextvars.bind_contextvars(session_id=join.session_id)
            await self._serve(join, session.last_seq)
        except* _Close as group:
            close = group.exceptions[0]
            assert isinstance(close, _Close)
            self._services.websockets.closed(close.code)
            log.debug("ws_closed", code=close.code, reason=close.reason)
            with trio.move_on_after(CLOSE_TIMEOUT):
                await websocket.close(close.code, close.reason)

    def _check_frame(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            raise _Close(CloseCode.UNSUPPORTED_DATA, "binary frames are not accepted")
        # hypercorn's limit counts characters; ours is bytes (a character is at most 4).
        limit = self._services.settings.websocket.max_frame_bytes
        if len(data) * 4 > limit and len(data.encode(errors="surrogatepass")) > limit:
            raise _Close(CloseCode.TOO_BIG, f"frames are limited to {limit} bytes")

    async def _join(self) -> tuple[Join, SessionInfo]:
        join_timeout = self._services.settings.websocket.join_timeout_seconds
        with trio.move_on_after(join_timeout):
            data = await websocket.receive()
            self._check_frame(data)
            assert isinstance(data, str)
            try:
                frame = parse_frame(data, limits=self._services.limits, joined=None)
            except FrameError as exc:
                raise _Close(CloseCode.JOIN_REQUIRED, f"{exc.code}: {exc.message}") from None
            assert isinstance(frame, Join)  # parse_frame allows nothing else before a join
            self._token_hash = token_hash(frame.token)
            try:
                session = await self._services.sessions.authorize(
                    frame.session_id, self._token_hash
                )
            except ClientError as exc:
                raise _Close(CloseCode.JOIN_FAILED, exc.message) from None
            except DatabaseUnavailable:
                raise _Close(CloseCode.INTERNAL_ERROR, "database unavailable; retry") from None
            return frame, session
        raise _Close(CloseCode.JOIN_TIMEOUT, f"no join_chat within {join_timeout:g}s")

    async def _serve(self, join: Join, last_seq: int) -> None:
        services = self._services
        stream = SessionStream(
            services.hub,
            services.messages,
            join.session_id,
            after_seq=join.last_seq,
            buffer=services.settings.websocket.send_buffer,
            subscriber_id=self._id,
        )
        self._stream = stream
        self.last_received = trio.current_time()  # the join counts as heard
        services.liveness.watch(self)
        try:
            with stream:
                await self._send(
                    {
                        "type": "joined",
                        "sessionId": join.session_id,
                        "lastSeq": last_seq,
                        "heartbeatIntervalSeconds": self._interval,
                    }
                )
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read)
                    nursery.start_soon(self._write, stream)
        finally:
            services.liveness.forget(self)

    def heartbeat_due(self) -> None:
        if self._stream is not None:
            self._stream.nudge()  # the writer sends it

    def silent(self) -> None:
        self._reading.cancel()

    async def _write(self, stream: SessionStream) -> None:
        while True:
            try:
                events = await stream.next()  # or none, when nudged for a heartbeat
            except SlowConsumer:
                raise _Close(
                    CloseCode.SLOW_CONSUMER, "too many events waiting; reconnect with lastSeq"
                ) from None
            except Closing:
                raise _Close(
                    CloseCode.GOING_AWAY, "server shutting down; reconnect with lastSeq"
                ) from None
            except DatabaseUnavailable:
                raise _Close(CloseCode.INTERNAL_ERROR, "database unavailable; retry") from None
            for event in events:
                await self._send_text(event.text)
            if trio.current_time() - self.last_sent >= self._interval:
                await self._send({"type": "heartbeat", "ts": int(time.time() * 1000)})

    async def _read(self) -> None:
        with self._reading:
            while True:
                data = await websocket.receive()
                self.last_received = trio.current_time()
                await self._handle(data)
        raise _Close(CloseCode.HEARTBEAT_TIMEOUT, "nothing received for two heartbeat intervals")

    async def _handle(self, data: str | bytes) -> None:
        self._check_frame(data)
        retry_after = self._meter.admit(trio.current_time())
        try:
            if retry_after is not None:
                raise FrameError("rate_limited", "too many frames; slow down")
            frame = parse_frame(data, limits=self._services.limits, joined=self._session_id)
        except FrameError as exc:
            self._meter.refused()
            if self._meter.abusive:
                raise _Close(CloseCode.ABUSIVE, "too many refused frames") from None
            event = exc.event()
            if retry_after is not None:
                event["retryAfter"] = round(retry_after, 3)
            await self._send(event)
            return
        self._meter.accepted()
        await self._dispatch(frame)

    async def _dispatch(self, frame: ClientFrame) -> None:
        match frame:
            case Ping():
                await self._send({"type": "pong", "ts": int(time.time() * 1000)})
            case Leave():
                raise _Close(CloseCode.NORMAL, "left")
            case Typing(is_typing=is_typing):
                if self._typing.allow(is_typing, trio.current_time()):
                    await self._relay_typing(is_typing)
            case SendFrame():
                await self._send(await self._send_message(frame))
            case Join():  # parse_frame refuses a second join
                raise AssertionError("join after join")

    async def _send_message(self, frame: SendFrame) -> dict[str, Any]:
        assert self._session_id is not None
        message = NewMessage(
            frame.content,
            frame.message_type,
            frame.metadata,
            frame.client_message_id,
            frame.attachments,
        )
        event: dict[str, Any]
        try:
            stored = await self._services.actors.send_message(
                self._session_id, self._token_hash, message
            )
        except ClientError as exc:
            event = {"type": "error", "code": exc.code, "message": exc.message}
            if exc.retry_after is not None:
                event["retryAfter"] = round(exc.retry_after, 3)
        except DatabaseUnavailable:
            event = {"type": "error", "code": "unavailable", "message": "database unavailable"}
            event["retryAfter"] = 5
        else:
            sent = stored.message
            return {
                "type": "message_ack",
                "clientMessageId": frame.client_message_id,
                "messageId": sent.id,
                "seq": sent.seq,
                "status": sent.status,
            }
        event["clientMessageId"] = frame.client_message_id
        return event

    async def _relay_typing(self, is_typing: bool) -> None:
        """Through PostgreSQL, so tabs connected to other processes see it too."""
        assert self._session_id is not None
        with contextlib.suppress(DatabaseUnavailable):  # a lost typing hint is harmless
            await self._services.messages.notify_event(
                {
                    "type": "typing",
                    "sessionId": self._session_id,
                    "isTyping": is_typing,
                    "origin": self._id,
                }
            )

    async def _send(self, event: dict[str, Any]) -> None:
        await self._send_text(encode_event(event))

    async def _send_text(self, text: str) -> None:
        # A frame is never cut: hypercorn shields its socket write, so a cancel lands before it
        # or after it.
        await websocket.send(text)
        self.last_sent = trio.current_time()
