"""The built-in demo bot, mounted when no n8n URL is configured: it speaks exactly the protocol
n8n does (Header Auth, the guide's payload or the Chat Trigger format, a synchronous reply).

Like n8n's AI Agent in the "Streaming" response mode, it streams its text replies word by word
(newline-delimited JSON, as n8n writes it), so `chatd serve` shows streamed replies with no setup.
n8n's stream carries text only: a reply with quick-reply buttons is answered whole, as a
"Respond to Webhook" node would."""

from __future__ import annotations

import hmac
import random
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import trio
from quart import Blueprint, Response, request

from chatd.core.demo_bot import answer, stream_chunks
from chatd.core.jsonbody import parse_json
from chatd.errors import BadRequest
from chatd.http.errors import error_response
from chatd.http.openapi import Doc, documented
from chatd.settings import Settings

DEMO_WEBHOOK_PATH = "/demo/n8n/webhook"
WORD_DELAY = (0.03, 0.06)  # seconds between two words: a model's pace


def streamed(text: str) -> Response:
    """A reply streamed as n8n streams one: 200 and headers at once, then a word at a time."""
    chunks = stream_chunks(text, int(time.time() * 1000))

    async def body() -> AsyncIterator[bytes]:
        for number, chunk in enumerate(chunks):
            if 1 < number < len(chunks) - 1:  # begin and the first word at once
                await trio.sleep(random.uniform(*WORD_DELAY))
            yield chunk

    # n8n's own content type for its stream (chatd tells a stream by its first line).
    return Response(body(), content_type="application/json; charset=utf-8")


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
        if body.get("event") is not None:  # a rating: noted, nothing to answer
            return {}
        if settings.n8n.mode == "chat_trigger":
            return streamed(answer(str(body.get("chatInput", "")), date.today()).content)
        text = str((body.get("message") or {}).get("content", ""))
        reply = answer(text, date.today())
        if not reply.quick_replies and not reply.handoff:  # an action needs the whole reply
            return streamed(reply.content)
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
