"""Server-Sent Events at GET /api/chat/events/{sessionId}: the WebSocket's events for clients
that cannot open one (chatd/PROTOCOL.md). Resume with Last-Event-ID (the seq)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from quart import Blueprint, Response, request

from chatd.core.wire import MAX_SEQ
from chatd.errors import BadRequest
from chatd.http.auth import request_token_hash
from chatd.http.body import client_ip
from chatd.http.services import Services
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
        services.admit_connection(ip)
        stream = SessionStream(
            services.hub,
            services.messages,
            session_id,
            after_seq=after,
            buffer=config.send_buffer,
            subscriber_id=services.connection_id(),
        )

        async def body() -> AsyncIterator[bytes]:
            # Counted from here: a generator that never starts never runs a `finally`.
            with services.live_connections.hold(ip), stream:
                yield b": connected\n\n"
                try:
                    while True:
                        events = await stream.next(max_wait=config.heartbeat_interval_seconds)
                        if not events:
                            yield b": heartbeat\n\n"
                        for event in events:
                            yield sse_frame(event)
                except (SlowConsumer, Closing) as exc:
                    log.debug("sse_ended", reason=type(exc).__name__)

        response = Response(
            body(),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        response.timeout = None  # a stream lives as long as the client stays
        return response

    return bp
