"""POST /api/chat/webhook: n8n's reply by callback — verified on the raw bytes, stored once."""

from __future__ import annotations

import time
from typing import Any

import structlog
from quart import Blueprint, request

from chatd.core.jsonbody import parse_json
from chatd.core.messages import BotMessage, MessageStatus
from chatd.core.replies import CallbackRequest, parse_callback, reply_key
from chatd.core.responses import CallbackAccepted, wire
from chatd.core.signing import SignatureError, verify_callback
from chatd.errors import NotFound, Unauthorized, UnsupportedMediaType
from chatd.http.openapi import Doc, documented
from chatd.http.services import Services

log = structlog.get_logger(__name__)


def webhook_routes(services: Services) -> Blueprint:
    bp = Blueprint("webhook", __name__, url_prefix="/api/chat")
    n8n = services.settings.n8n

    @bp.post("/webhook")
    @documented(
        Doc(
            "n8n's reply by callback, signed (stored once however often it comes)",
            "n8n",
            CallbackAccepted,
            CallbackRequest,
            auth="signature",
        )
    )
    async def callback() -> dict[str, Any]:
        raw = await request.get_data(as_text=False)
        assert isinstance(raw, bytes)
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            scheme = verify_callback(headers, raw, n8n.secrets, now=time.time())
        except SignatureError as exc:
            services.callbacks.signature_refused(exc.reason)
            log.warning("callback_signature_rejected", reason=exc.reason)
            raise Unauthorized(str(exc), code="invalid_signature") from None
        if request.mimetype != "application/json":
            raise UnsupportedMediaType("send Content-Type: application/json")
        cb = parse_callback(parse_json(raw), max_content=n8n.max_reply_length)
        structlog.contextvars.bind_contextvars(session_id=cb.session_id, message_id=cb.reply_to)
        if cb.reply_to is not None and not await services.queue.reply_target_exists(
            cb.session_id, cb.reply_to
        ):
            raise NotFound(
                "replyTo is not a message of this session",
                code="reply_to_not_found",
                field="replyTo",
            )
        message = BotMessage(
            cb.session_id,
            cb.reply.content,
            cb.reply.message_type,
            cb.reply.metadata,
            cb.reply_to,
            reply_key(cb.reply_to, cb.reply),
            handoff=cb.reply.handoff,
        )
        stored = await services.actors.store_reply(message, reply_status=MessageStatus.DELIVERED)
        log.info("callback_accepted", scheme=scheme, duplicate=stored.duplicate, held=stored.held)
        if stored.message is None:  # no job to fence: only an agent's hold keeps it out
            return wire(CallbackAccepted(success=True, messageId=None, duplicate=False, held=True))
        return wire(
            CallbackAccepted(success=True, messageId=stored.message.id, duplicate=stored.duplicate)
        )

    return bp
