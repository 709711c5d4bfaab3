"""What chatd sends n8n for one delivery: the body and its headers.

What n8n answers is read in replies.py; between them they are the whole contract. The body is
the guide's N8nWebhookPayload (stored with the job) plus `callbackUrl` and `deliveryId`, or, for
n8n's Chat Trigger, that trigger's own shape carrying the payload as metadata. The headers carry
the shared secret n8n's Webhook node checks and a Standard Webhooks signature per secret.

Files a message carries are in `message.attachments` (id, name, type, size, sha256), each with
a `url` signed at this attempt, so a retry hours later still carries links that work. For the
Chat Trigger, a message with files is sent as n8n's own chat widget sends one: multipart/form-
data with the fields action, sessionId, chatInput and metadata (JSON) and one `files` part per
file, which the trigger turns into binary data an AI agent can look at.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from chatd.core.file_urls import FileLinks
from chatd.core.signing import sign_headers

N8nMode = Literal["webhook", "chat_trigger"]


@dataclass(frozen=True)
class N8nRequest:
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class FilePart:
    """A file's bytes, for the Chat Trigger's multipart body."""

    name: str
    type: str
    data: bytes


@dataclass(frozen=True)
class DeliveryFiles:
    """What a delivery needs for the message's files: `links` to sign their URLs with and, in
    chat_trigger mode, their bytes (`parts`, in the message's order) and a multipart boundary
    (random, from the caller: core takes no randomness of its own)."""

    links: FileLinks | None = None
    parts: tuple[FilePart, ...] = field(default=())
    boundary: str = ""


@dataclass(frozen=True)
class N8nTarget:
    """Where chatd posts, and the credentials it shows there (secrets: never logged)."""

    url: str  # without user:password
    auth_headers: dict[str, str] = field(default_factory=dict)


def n8n_target(
    url: str,
    *,
    basic_auth_user: str = "",
    basic_auth_password: str = "",
    auth_header_name: str = "",
    auth_header_value: str = "",
) -> N8nTarget:
    """n8n's URL without its userinfo, and the auth headers: HTTP Basic from the URL's
    user:password (percent-decoded, as browsers and httpx read it) or from the settings, and
    the extra header. chatd posts with a bare HTTP transport, which sends no userinfo itself."""
    parts = urlsplit(url)
    headers: dict[str, str] = {}
    user, password = basic_auth_user, basic_auth_password
    if parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")
        netloc = parts.netloc.rpartition("@")[2]
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    if auth_header_name:
        headers[auth_header_name] = auth_header_value
    return N8nTarget(url, headers)


def n8n_request(
    payload: Mapping[str, Any],
    *,
    session_id: str,
    delivery_id: str,
    attempt: int,
    callback_url: str,
    mode: N8nMode,
    secrets: Sequence[str],  # the first goes in X-Webhook-Secret; all sign (rotation)
    now: int,  # Unix seconds: the signature's timestamp, and when file URLs are signed
    files: DeliveryFiles | None = None,
    auth_headers: Mapping[str, str] | None = None,  # N8nTarget.auth_headers
) -> N8nRequest:
    """The POST for attempt `attempt` of delivery `delivery_id` (the job's id)."""
    files = files or DeliveryFiles()
    document = request_body(
        with_file_urls(payload, files.links, now),
        session_id=session_id,
        delivery_id=delivery_id,
        callback_url=callback_url,
        mode=mode,
    )
    if mode == "chat_trigger" and files.parts:
        body = multipart_body(document, files.parts, files.boundary)
        content_type = f"multipart/form-data; boundary={files.boundary}"
    else:
        body = json.dumps(document, separators=(",", ":")).encode()
        content_type = "application/json"
    headers = {
        "Content-Type": content_type,
        "User-Agent": "chatd",
        "X-Chatd-Attempt": str(attempt),
        # n8n gzips a streamed reply when asked to: plain text is read as it comes, with no
        # inflater between the socket and the shopper.
        "Accept-Encoding": "identity",
        **(auth_headers or {}),
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


def with_file_urls(
    payload: Mapping[str, Any], links: FileLinks | None, now: float
) -> Mapping[str, Any]:
    """`payload` with a URL, signed now, on each of its message's attachments."""
    message = payload.get("message")
    if not isinstance(message, Mapping) or links is None or not links.ready:
        return payload
    files = message.get("attachments")
    if not files:
        return payload
    signed = [{**entry, "url": links.sign(entry["id"], "original", now).url} for entry in files]
    return {**payload, "message": {**message, "attachments": signed}}


def multipart_body(document: Mapping[str, Any], parts: Sequence[FilePart], boundary: str) -> bytes:
    """The Chat Trigger's document as multipart/form-data, `parts` as its `files` fields."""
    if not boundary or any(boundary.encode() in part.data for part in parts):
        raise ValueError("the boundary must be non-empty and occur in no file")
    fields = {
        key: value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        for key, value in document.items()
    }
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for part in parts:
        filename = part.name.replace('"', "%22").replace("\r", "").replace("\n", "")
        out += (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="files"; filename="{filename}"\r\n'
            f"Content-Type: {part.type}\r\n\r\n"
        ).encode()
        out += part.data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)
