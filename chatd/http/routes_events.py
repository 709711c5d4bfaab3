"""Server-Sent Events at GET /api/chat/events/{sessionId}: the WebSocket's events for clients
that cannot open one (chatd/PROTOCOL.md). Resume with Last-Event-ID (the seq)."""

from __future__ import annotations

from contextlib import ExitStack

import structlog
from quart import Blueprint, Response, request

from chatd.core.wire import MAX_SEQ
from chatd.errors import BadRequest
from chatd.http.auth import request_token_hash
from chatd.http.body import client_ip
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
    raw = request.headers.get("Last-Event-ID") or request.args.get("lastSeq") or "0"
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_SEQ:
        raise BadRequest(
            "Last-Event-ID / lastSeq must be a message seq (a whole number)",
            code="invalid_query",
            field="lastSeq",
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
    async def events(session_id: str) -> Response:
        structlog.contextvars.bind_contextvars(session_id=session_id)
        unknown = set(request.args) - {"lastSeq"}
        if unknown:
            name = sorted(unknown)[0]
            raise BadRequest(f"unknown query parameter {name!r}", code="unknown_field", field=name)
        after = resume_seq()
        await services.sessions.authorize(session_id, request_token_hash())
        ip = client_ip(services.settings.server.trust_forwarded_for)
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
