"""`chatd n8n-check`, the pure half: the test request chatd sends, and what the answer means.

The request is a real delivery's (chatd/core/n8n_request.py builds both; the payload has the
shape the send_user_message query stores); `sessionMetadata.chatdCheck` marks it as a test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from chatd.core.n8n_request import N8nMode, n8n_request
from chatd.core.replies import InvalidReply, parse_reply_body

CHECK_CONTENT = "chatd n8n-check: a test message, to see that this workflow answers chatd."


@dataclass(frozen=True)
class Outcome:
    ok: bool
    lines: list[str]


def check_request(
    *,
    delivery_id: str,
    session_id: str,
    now: float,
    callback_url: str,
    mode: N8nMode,
    secrets: Sequence[str],
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of one test delivery, signed as chatd signs every delivery."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    payload: dict[str, Any] = {
        "sessionId": session_id,
        "messageId": delivery_id,
        "seq": 1,
        "userId": None,
        "guestEmail": None,
        "message": {"content": CHECK_CONTENT, "type": "text", "timestamp": stamp},
        "userContext": {"isAuthenticated": False},
        "sessionMetadata": {"chatdCheck": True},
    }
    request = n8n_request(
        payload,
        session_id=session_id,
        delivery_id=delivery_id,
        attempt=1,
        callback_url=callback_url,
        mode=mode,
        secrets=secrets,
        now=int(now),
    )
    return request.body, request.headers


def explain_failure(error: str, url: str, timeout: float) -> Outcome:
    """No HTTP answer at all: `error` as the sender reports it (timeout, connection failed)."""
    if error.startswith("timeout"):
        return Outcome(
            False,
            [
                f"no answer from {url} within {timeout:g}s (n8n.timeout_seconds).",
                "Is n8n overloaded or the workflow slow? A slow bot should answer at once and"
                " reply by callback (chatd n8n-workflow --mode callback).",
            ],
        )
    if "SSL" in error or "certificate" in error.lower():
        return Outcome(
            False,
            [
                f"TLS failed with {url}: {error}",
                "Check n8n's certificate (its host name, a CA this machine trusts), and that"
                " the URL's scheme and port are right (https:// to an http:// port fails).",
            ],
        )
    return Outcome(
        False,
        [
            f"cannot connect to {url}: {error}",
            "Is n8n running, and are the host and port in n8n.webhook_url right?",
        ],
    )


def explain_answer(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    url: str,
    mode: Literal["webhook", "chat_trigger"],
    max_reply_length: int,
) -> Outcome:
    """What n8n's HTTP answer to the test request means, in words."""
    if 200 <= status < 300:
        return _explain_success(status, body, mode, max_reply_length)
    if 300 <= status < 400:
        where = headers.get("location", "nowhere")
        return Outcome(
            False,
            [
                f"n8n answered {status}, a redirect to {where}.",
                "chatd does not follow redirects: set n8n.webhook_url to the final URL"
                " (often https:// instead of http://).",
            ],
        )
    if status == 404:
        lines = [
            "n8n answered 404: the workflow is not active, or the webhook path is wrong.",
            "In n8n, activate the workflow (the production URL is /webhook/<path>); the test URL"
            " /webhook-test/ only works while the editor listens.",
        ]
        return Outcome(False, lines)
    if status in (401, 403):
        return Outcome(
            False,
            [
                f"n8n answered {status}: the secret is wrong.",
                "n8n.webhook_secret must match the Webhook node's Header Auth credential"
                " (header X-Webhook-Secret).",
            ],
        )
    text = _snippet(body)
    if status >= 500:
        return Outcome(
            False,
            [
                f"n8n answered {status}: the workflow failed{f': {text}' if text else ''}.",
                "See the failed execution under Executions in n8n.",
            ],
        )
    return Outcome(False, [f"n8n answered {status}{f': {text}' if text else ''}."])


def _explain_success(
    status: int, body: bytes, mode: Literal["webhook", "chat_trigger"], max_reply_length: int
) -> Outcome:
    try:
        reply = parse_reply_body(body, mode=mode, max_content=max_reply_length)
    except InvalidReply as exc:
        return Outcome(
            False,
            [
                f"n8n answered {status}, but chatd cannot use the reply: {exc}.",
                "Shoppers would get n8n.fallback_reply; see README, 'Connect n8n', for the"
                " reply shapes chatd reads.",
            ],
        )
    if reply is None:
        return Outcome(
            True,
            [
                f"n8n answered {status} without a reply: fine in callback mode (the reply comes"
                " later to /api/chat/webhook);",
                "in sync mode the workflow must end with a Respond to Webhook node.",
            ],
        )
    return Outcome(
        True, [f"n8n answered {status} with a reply ({reply.message_type}):", reply.content]
    )


def _snippet(body: bytes, limit: int = 200) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
