"""The end of a conversation and its rating (CSAT): the shopper's "End chat", staff's close (admin
API), and 1-5 stars with an optional comment once it ended. All go through the session's actor."""

from __future__ import annotations

from typing import Any

import structlog
from quart import Blueprint

from chatd.core.csat import (
    Ending,
    RatingAccepted,
    RatingRequest,
    SessionEnded,
    clean_comment,
    rating_requested,
    wire_status,
)
from chatd.core.ids import parse_id
from chatd.core.responses import wire
from chatd.core.wire import iso
from chatd.db.conversations import Conversation
from chatd.errors import NotFound, Unauthorized
from chatd.http.auth import request_token_hash
from chatd.http.body import json_body
from chatd.http.openapi import Doc, documented
from chatd.http.routes_admin import PREFIX
from chatd.http.routes_analytics import admin_only
from chatd.http.services import Services

log = structlog.get_logger(__name__)


def csat_routes(services: Services) -> Blueprint:
    bp = Blueprint("csat", __name__, url_prefix="/api/chat")

    @bp.post("/session/<session_id>/close")
    @documented(
        Doc(
            "End the conversation (the shopper's End chat); once ended, nothing changes",
            "chat",
            SessionEnded,
            auth="session",
        )
    )
    async def close(session_id: str) -> dict[str, Any]:
        session_id = parse_id(session_id, "sessionId")
        structlog.contextvars.bind_contextvars(session_id=session_id)
        token_hash = request_token_hash()
        conversation = await services.actors.close(
            session_id, by=Ending.SHOPPER, token_hash=token_hash
        )
        return ended(services, conversation)

    @bp.post("/rating")
    @documented(
        Doc(
            "Rate an ended conversation, once: 1-5 and an optional comment",
            "chat",
            RatingAccepted,
            RatingRequest,
            auth="session",
            description="409 already_rated for a second rating, 409 conversation_active before"
            " the conversation ended; 404 csat_disabled when csat.enabled is false.",
        )
    )
    async def rate() -> dict[str, Any]:
        body = await json_body(RatingRequest)
        structlog.contextvars.bind_contextvars(session_id=body.sessionId)
        token_hash = request_token_hash()
        if not services.settings.csat.enabled:
            raise NotFound("ratings are off (csat.enabled = false)", code="csat_disabled")
        rated = await services.actors.rate(
            body.sessionId,
            token_hash,
            body.rating,
            clean_comment(body.comment),
            # n8n's Chat Trigger takes chat input only: an event would reach the bot as a message.
            notify_n8n=services.settings.n8n.mode == "webhook",
        )
        return wire(
            RatingAccepted(
                sessionId=body.sessionId,
                rating=rated.rating.rating,
                comment=rated.rating.comment,
                createdAt=iso(rated.rating.created_at),
            )
        )

    return bp


def staff_close_routes(services: Services) -> Blueprint:
    bp = Blueprint("csat_admin", __name__, url_prefix=PREFIX)
    admin_only(bp, services)

    @bp.post("/sessions/<session_id>/close")
    @documented(
        Doc(
            "End a conversation for staff; the shopper's widget then asks for a rating"
            " (csat.ask_on)",
            "admin",
            SessionEnded,
            auth="admin",
            description="An ended conversation is left as it was. 404 session_not_found.",
        )
    )
    async def staff_close(session_id: str) -> dict[str, Any]:
        session_id = parse_id(session_id, "sessionId")
        structlog.contextvars.bind_contextvars(session_id=session_id)
        try:
            conversation = await services.actors.close(session_id, by=Ending.STAFF)
        except Unauthorized:  # no token to prove: the session does not exist
            raise NotFound(f"no session {session_id!r}", code="session_not_found") from None
        log.info("session_closed_by_staff")
        return ended(services, conversation)

    return bp


def ended(services: Services, conversation: Conversation) -> dict[str, Any]:
    csat = services.settings.csat  # reloadable: read now
    return wire(
        SessionEnded(
            sessionId=conversation.id,
            status=wire_status(conversation.status, conversation.ending),
            ratingRequested=rating_requested(
                conversation.ending,
                conversation.rating is not None,
                enabled=csat.enabled,
                ask_on=csat.endings,
            ),
        )
    )
