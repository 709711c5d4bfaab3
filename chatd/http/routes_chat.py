"""REST routes for sessions and messages: parse, authorize, call the actor or store, serialize."""

from __future__ import annotations

import math
import time
from typing import Any

import structlog
import trio
from quart import Blueprint, request

from chatd.core.conversation import request_handoff
from chatd.core.csat import rating_requested, wire_status
from chatd.core.identity import prove_identity
from chatd.core.ids import parse_id
from chatd.core.inbox_wire import HandoffAccepted, HandoffRequest
from chatd.core.messages import Message, NewMessage
from chatd.core.responses import (
    MessageAccepted,
    MessagePage,
    Pagination,
    SessionCreated,
    SessionView,
    StreamingReply,
    wire,
)
from chatd.core.tokens import new_id, new_session_token, token_hash
from chatd.core.wire import (
    CreateSessionRequest,
    PageParams,
    SendMessageRequest,
    check_attachments,
    check_content,
    check_metadata,
    iso,
    parse_page_query,
)
from chatd.errors import BadRequest, Conflict, RateLimited
from chatd.http.auth import request_token_hash
from chatd.http.body import client_ip, json_body
from chatd.http.openapi import Doc, documented
from chatd.http.services import Services
from chatd.realtime.hub import Closing, SlowConsumer
from chatd.realtime.stream import SessionStream

RECENT_ON_SESSION = 50
# A long-poll answered because a streamed reply moved waits this long for more of it (seconds):
# a client polling while tokens flow polls a few times a second, not once per token.
STREAM_SETTLE = 0.2


def chat_routes(services: Services) -> Blueprint:
    bp = Blueprint("chat", __name__, url_prefix="/api/chat")
    settings = services.settings

    @bp.post("/session")
    @documented(
        Doc(
            "Start a chat session; its token opens it later",
            "chat",
            SessionCreated,
            CreateSessionRequest,
        )
    )
    async def create_session() -> dict[str, Any]:
        body = await json_body(CreateSessionRequest)
        metadata = check_metadata(body.metadata, services.limits)
        identity = prove_identity(
            user_id=body.userId,
            user_hash_hex=body.userHash,
            identity_token=body.identityToken,
            secret=settings.identity.secret,
            now=time.time(),
        )
        wait = await services.session_creation.hit(
            client_ip(settings.server.proxy_trust), trio.current_time()
        )
        if wait is not None:
            raise RateLimited("too many new sessions from this address", retry_after=wait)
        token = new_session_token()
        session = await services.sessions.create(
            session_id=new_id(),
            token_hash=token_hash(token),
            identity=identity,
            guest_email=body.guestEmail,
            metadata=metadata,
        )
        structlog.contextvars.bind_contextvars(session_id=session.id)
        return wire(
            SessionCreated(
                sessionId=session.id,
                sessionToken=token,
                status=session.status,
                expiresAt=iso(session.expires_at),
            )
        )

    @bp.get("/session/<session_id>")
    @documented(
        Doc(
            "A session and its recent messages, also once it ended (then: rate it?)",
            "chat",
            SessionView,
            auth="session",
        )
    )
    async def get_session(session_id: str) -> dict[str, Any]:
        session_id = parse_id(session_id, "sessionId")
        structlog.contextvars.bind_contextvars(session_id=session_id)
        session = await services.conversations.state(session_id, request_token_hash())
        messages = await services.messages.recent(session_id, limit=RECENT_ON_SESSION)
        csat = services.settings.csat  # reloadable: read now
        return wire(
            SessionView(
                sessionId=session.id,
                status=wire_status(session.status, session.ending),
                messages=[m.to_out() for m in messages],
                metadata=session.metadata,
                expiresAt=iso(session.expires_at),
                ratingRequested=rating_requested(
                    session.ending,
                    session.rating is not None,
                    enabled=csat.enabled,
                    ask_on=csat.endings,
                ),
                rated=session.rating is not None,
            )
        )

    @bp.post("/send")
    @documented(
        Doc(
            "Send a shopper's message (stored, then delivered to n8n)",
            "chat",
            MessageAccepted,
            SendMessageRequest,
            auth="session",
        )
    )
    async def send() -> dict[str, Any]:
        token_hash = request_token_hash()  # no token: 401, whatever the body holds
        body = await json_body(SendMessageRequest)
        structlog.contextvars.bind_contextvars(session_id=body.sessionId)
        limits = services.limits
        attachments = check_attachments(body.attachments, limits)
        message = NewMessage(
            check_content(body.content, limits, with_attachments=bool(attachments)),
            body.messageType,
            check_metadata(body.metadata, limits),
            body.clientMessageId,
            attachments,
        )
        stored = await services.actors.send_message(body.sessionId, token_hash, message)
        sent = stored.message
        structlog.contextvars.bind_contextvars(message_id=sent.id)
        return wire(
            MessageAccepted(
                messageId=sent.id,
                status=sent.status.value,
                timestamp=iso(sent.created_at),
                seq=sent.seq,
            )
        )

    @bp.post("/handoff")
    @documented(
        Doc(
            "Ask for a person: the bot stops answering and the staff inbox shows it waiting",
            "chat",
            HandoffAccepted,
            HandoffRequest,
            auth="session",
        )
    )
    async def handoff() -> dict[str, Any]:
        body = await json_body(HandoffRequest)
        structlog.contextvars.bind_contextvars(session_id=body.sessionId)
        await services.sessions.authorize(body.sessionId, request_token_hash())
        try:
            message = await services.actors.change_conversation(
                body.sessionId, request_handoff(body.reason.strip())
            )
        except Conflict:  # asked before, or a person is there already: nothing to do
            row = await services.takeover.conversation(body.sessionId)
            state = row.state.value if row else "bot"
            return wire(HandoffAccepted(state=state, message=None))
        return wire(HandoffAccepted(state="waiting", message=message.to_out()))

    async def long_poll(
        session_id: str, after_seq: int, limit: int, wait: float, stream_version: int | None
    ) -> list[Message]:
        """Hold until a message after `after_seq` is stored (or `wait` seconds pass, or, given
        `stream_version`, the session's streamed replies change): the first `limit` of them,
        like the WebSocket's stream (subscribed before it reads, so a message stored in between
        is not missed)."""
        stream = SessionStream(
            services.hub,
            services.messages,
            session_id,
            after_seq=after_seq,
            buffer=settings.websocket.send_buffer,
            subscriber_id=services.connection_id(),
            page=limit,
        )
        ip = client_ip(settings.server.proxy_trust)
        streams = services.hub.streams
        settle_until = math.inf  # once the streams changed: a moment for more pieces to come
        # A waiting long-poll is a live connection: it counts against the address's limit.
        async with services.live_connections.hold(ip):
            with stream, trio.move_on_after(wait):
                while True:
                    try:
                        events = await stream.next(settle_until - trio.current_time())
                    except SlowConsumer:  # more than a buffer's worth at once: read them
                        return await services.messages.after_seq(session_id, after_seq, limit=limit)
                    except Closing:
                        break
                    messages = [event.message for event in events if event.message is not None]
                    if messages:
                        return messages[:limit]
                    if trio.current_time() >= settle_until:
                        break
                    changed = stream_version is not None
                    if changed and streams.version(session_id) != stream_version:
                        settle_until = min(settle_until, trio.current_time() + STREAM_SETTLE)
        return []

    def streaming_now(session_id: str) -> tuple[list[StreamingReply], int]:
        streams = services.hub.streams
        views = [StreamingReply(**s.view()) for s in streams.of_session(session_id)]
        return views, streams.version(session_id)

    @bp.get("/messages/<session_id>")
    @documented(
        Doc(
            "A page of messages, or those after a seq (long poll with wait, and streamVersion)",
            "chat",
            MessagePage,
            query=PageParams,
            auth="session",
        )
    )
    async def messages(session_id: str) -> dict[str, Any]:
        session_id = parse_id(session_id, "sessionId")
        structlog.contextvars.bind_contextvars(session_id=session_id)
        page = parse_page_query(request.args)
        await services.sessions.authorize(session_id, request_token_hash())
        known = page.stream_version
        streaming: tuple[list[StreamingReply], int] | None = None
        if page.after_seq is not None:
            if page.page != 1:
                raise BadRequest(
                    "use either page or afterSeq, not both", code="invalid_query", field="afterSeq"
                )
            # The streams before the messages: a reply stored in between is in both, and a
            # client takes the stored one (never neither: then its bubble would flicker).
            streaming = streaming_now(session_id) if known is not None else None
            found = await services.messages.after_seq(session_id, page.after_seq, limit=page.limit)
            wait = min(page.wait, settings.websocket.long_poll_max_wait_seconds)
            if not found and wait > 0 and (streaming is None or streaming[1] == known):
                found = await long_poll(session_id, page.after_seq, page.limit, wait, known)
                if known is not None:
                    streaming = streaming_now(session_id)
                    if not found:
                        found = await services.messages.after_seq(
                            session_id, page.after_seq, limit=page.limit
                        )
        else:
            found = await services.messages.recent(
                session_id, limit=page.limit, offset=(page.page - 1) * page.limit
            )
        total = await services.messages.count(session_id)
        body = MessagePage(
            messages=[m.to_out() for m in found],
            pagination=Pagination(page=page.page, limit=page.limit, total=total),
        )
        if streaming is not None:
            body = MessagePage(
                messages=body.messages,
                pagination=body.pagination,
                streaming=streaming[0],
                streamVersion=streaming[1],
            )
        return wire(body)

    return bp
