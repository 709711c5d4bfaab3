"""The built-in demo bot, mounted when no n8n URL is configured: it speaks exactly the protocol
n8n does (Header Auth, the guide's payload or the Chat Trigger format, a synchronous reply)."""

from __future__ import annotations

import hmac
from datetime import date
from typing import Any

from quart import Blueprint, request

from chatd.core.demo_bot import answer
from chatd.core.jsonbody import parse_json
from chatd.errors import BadRequest
from chatd.http.errors import error_response
from chatd.http.openapi import Doc, documented
from chatd.settings import Settings

DEMO_WEBHOOK_PATH = "/demo/n8n/webhook"


def demo_bot_routes(settings: Settings) -> Blueprint:
    bp = Blueprint("demo_bot", __name__)
    secret = settings.n8n.webhook_secret

    @bp.post(DEMO_WEBHOOK_PATH)
    @documented(
        Doc(
            "The built-in demo bot, speaking n8n's webhook protocol (demo mode only)",
            "n8n",
            "application/json",
            headers={"X-Webhook-Secret": "n8n.webhook_secret, when one is set"},
            also={403: "wrong X-Webhook-Secret"},
        )
    )
    async def webhook() -> Any:
        given = request.headers.get("X-Webhook-Secret", "")
        if secret and not hmac.compare_digest(given.encode(), secret.encode()):
            return error_response(403, "forbidden", "Authorization data is wrong!")
        body = parse_json(await request.get_data(as_text=False))  # type: ignore[arg-type]
        if not isinstance(body, dict):
            raise BadRequest("expected a JSON object", code="invalid_body")
        if settings.n8n.mode == "chat_trigger":
            return {"output": answer(str(body.get("chatInput", "")), date.today()).content}
        text = str((body.get("message") or {}).get("content", ""))
        reply = answer(text, date.today())
        response: dict[str, Any] = {
            "content": reply.content,
            "type": "quick_reply" if reply.quick_replies else "text",
        }
        if reply.quick_replies:
            response["quickReplies"] = reply.quick_replies
        answered: dict[str, Any] = {
            "sessionId": body.get("sessionId"),
            "response": response,
            "metadata": {"intent": reply.intent, "confidence": 0.9},
        }
        if reply.handoff:
            answered["actions"] = [{"type": "handoff", "reason": "the shopper asked for a person"}]
        return answered

    return bp
