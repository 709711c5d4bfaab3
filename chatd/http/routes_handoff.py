"""When nobody can answer a handoff: the email a shopper leaves (POST /api/chat/contact-email,
with the session's token) and who is online for the inbox page (GET /api/inbox/presence)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from quart import Blueprint

from chatd.core.availability import judge
from chatd.core.handoff_wire import (
    ContactEmailAccepted,
    ContactEmailRequest,
    OnlineAgentOut,
    PresenceOut,
)
from chatd.core.responses import wire
from chatd.core.wire import iso
from chatd.http.auth import request_token_hash
from chatd.http.body import json_body
from chatd.http.openapi import Doc, documented
from chatd.http.services import Services
from chatd.http.staff_auth import request_agent

log = structlog.get_logger(__name__)


def handoff_routes(services: Services) -> Blueprint:
    bp = Blueprint("handoff", __name__)

    @bp.post("/api/chat/contact-email")
    @documented(
        Doc(
            "Leave an email for the staff to answer at (when nobody is there); the inbox shows it",
            "chat",
            ContactEmailAccepted,
            ContactEmailRequest,
            auth="session",
        )
    )
    async def contact_email() -> dict[str, Any]:
        body = await json_body(ContactEmailRequest)
        structlog.contextvars.bind_contextvars(session_id=body.sessionId)
        await services.sessions.authorize(body.sessionId, request_token_hash())
        message = await services.handoffs.contact_email(
            body.sessionId,
            body.email,
            f"Thanks! We will answer at {body.email}.",
            {"conversation": {"event": "email_left", "email": body.email}},
        )
        log.info("contact_email_left", message_id=message.id)
        return wire(ContactEmailAccepted(email=body.email, message=message.to_out()))

    @bp.get("/api/inbox/presence")
    @documented(
        Doc(
            "Agents online now (an open inbox, anywhere) and the business hours' state",
            "inbox",
            PresenceOut,
            auth="staff",
        )
    )
    async def presence() -> Any:
        await request_agent(services)
        agents = await services.presence.online()
        inbox = services.settings.inbox
        now = datetime.now(UTC)
        availability = judge(inbox.hours, len(agents), now)
        back_at = availability.back_at
        out = PresenceOut(
            agents=[OnlineAgentOut(id=a.id, name=a.name) for a in agents],
            open=availability.open,
            backAt=None if back_at is None else iso(back_at.astimezone(UTC)),
            timeZone=inbox.time_zone,
            expectedReply=inbox.expected_reply,
        )
        return wire(out), 200, {"Cache-Control": "no-store"}

    return bp
