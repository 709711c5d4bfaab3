"""Server-Sent Events at GET /api/chat/events/{sessionId}: the WebSocket's events for clients
that cannot open one (chatd/PROTOCOL.md). Resume with Last-Event-ID (the seq)."""

from __future__ import annotations

from contextlib import ExitStack

import structlog
from quart import Blueprint, Response, request

from chatd.core.ids import parse_id
from chatd.core.query import parse_query
from chatd.core.wire import MAX_SEQ, EventsParams
from chatd.errors import BadRequest
from chatd.http.auth import request_token_hash
from chatd.http.body import client_ip
from chatd.http.openapi import Doc, documented
from chatd.http.services import Services
from chatd.realtime.admission import Admission
from chatd.realtime.hub import Closing, Event, SlowConsumer
from chatd.realtime.stream import SessionStream

log = structlog.get_logger(__name__)


def sse_frame(event: Event) -> bytes:
    lines = f"event: {event.type}\ndata: {event.text}\n"
    if event.seq is not None:
        lines = f"id: {event.seq}\n{lines}"
    return f"{lines}\n".encode()


def resume_seq() -> int:
    """Last-Event-ID (set by EventSource on reconnect), else ?lastSeq=, else 0."""
    params = parse_query(EventsParams, request.args)
    raw = request.headers.get("Last-Event-ID")
    if not raw:
        return params.lastSeq
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_SEQ:
        raise BadRequest(
            "Last-Event-ID must be a message seq (a whole number)",
            code="invalid_query",
            field="Last-Event-ID",
        )
    return int(raw)


class EventStreamBody:
    """The response body: an async iterator quart closes (aclose) however the response ends.

    Not an async generator: one abandoned mid-await (the client went away) would be finalized
    by the garbage collector at some later point, with its subscription held until then."""

    def __init__(self, stream: SessionStream, heartbeat: float) -> None:
        self._stream = stream
        self._heartbeat = heartbeat
        self._resources = ExitStack()
        self._admissions: list[Admission] = []
        self._started = False

    def hold(self, admission: Admission) -> None:
        """Started with the response, released with the subscription when the stream ends."""
        self._admissions.append(admission)

    def __aiter__(self) -> EventStreamBody:
        return self

    async def __anext__(self) -> bytes:
        if not self._started:
            self._started = True
            for admission in self._admissions:
                admission.start()
                self._resources.callback(admission.release)
            self._resources.enter_context(self._stream)
            return b": connected\n\n"
        try:
            events = await self._stream.next(max_wait=self._heartbeat)
        except (SlowConsumer, Closing) as exc:
            log.debug("sse_ended", reason=type(exc).__name__)
            await self.aclose()
            raise StopAsyncIteration from None
        if not events:
            return b": heartbeat\n\n"
        return b"".join(sse_frame(event) for event in events)

    async def aclose(self) -> None:
        self._resources.close()


def events_routes(services: Services) -> Blueprint:
    bp = Blueprint("events", __name__)
    config = services.settings.websocket

    @bp.get("/api/chat/events/<session_id>")
    @documented(
        Doc(
            "The session's events as Server-Sent Events (chatd/PROTOCOL.md)",
            "chat",
            "text/event-stream",
            query=EventsParams,
            auth="session",
            headers={
                "Last-Event-ID": "the last seq seen (set by EventSource on reconnect); wins over lastSeq"
            },
        )
    )
    async def events(session_id: str) -> Response:
        session_id = parse_id(session_id, "sessionId")
        structlog.contextvars.bind_contextvars(session_id=session_id)
        after = resume_seq()
        await services.sessions.authorize(session_id, request_token_hash())
        ip = client_ip(services.settings.server.proxy_trust)
        admission = await services.live_connections.admit(ip)  # started with the response
        stream = SessionStream(
            services.hub,
            services.messages,
            session_id,
            after_seq=after,
            buffer=config.send_buffer,
            subscriber_id=services.connection_id(),
        )

        body = EventStreamBody(stream, config.heartbeat_interval_seconds)
        body.hold(admission)
        response = Response(
            body,
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        response.timeout = None  # a stream lives as long as the client stays
        return response

    return bp
