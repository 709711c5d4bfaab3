"""What chatd sends n8n for one delivery: the JSON body and its headers.

What n8n answers is read in replies.py; between them they are the whole contract. The body is
the guide's N8nWebhookPayload (stored with the job) plus `callbackUrl` and `deliveryId`, or, for
n8n's Chat Trigger, that trigger's own shape carrying the payload as metadata. The headers carry
the shared secret n8n's Webhook node checks and a Standard Webhooks signature per secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chatd.core.signing import sign_headers

N8nMode = Literal["webhook", "chat_trigger"]


@dataclass(frozen=True)
class N8nRequest:
    body: bytes
    headers: dict[str, str]


def n8n_request(
    payload: Mapping[str, Any],
    *,
    session_id: str,
    delivery_id: str,
    attempt: int,
    callback_url: str,
    mode: N8nMode,
    secrets: Sequence[str],  # the first goes in X-Webhook-Secret; all sign (rotation)
    now: int,  # Unix seconds: the signature's timestamp
) -> N8nRequest:
    """The POST for attempt `attempt` of delivery `delivery_id` (the job's id)."""
    document = request_body(
        payload,
        session_id=session_id,
        delivery_id=delivery_id,
        callback_url=callback_url,
        mode=mode,
    )
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "chatd",
        "X-Chatd-Attempt": str(attempt),
    }
    if secrets:
        headers["X-Webhook-Secret"] = secrets[0]
        headers.update(sign_headers(secrets, delivery_id, now, body))
    return N8nRequest(body, headers)


def request_body(
    payload: Mapping[str, Any],
    *,
    session_id: str,
    delivery_id: str,
    callback_url: str,
    mode: N8nMode,
) -> dict[str, Any]:
    full = {**payload, "callbackUrl": callback_url, "deliveryId": delivery_id}
    if mode == "chat_trigger":
        return {
            "action": "sendMessage",
            "sessionId": session_id,
            "chatInput": payload["message"]["content"],
            "metadata": full,
        }
    return full
