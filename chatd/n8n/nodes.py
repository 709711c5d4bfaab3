"""Building blocks of n8n's workflow JSON, shared by chatd's workflows (workflow.py, agent.py).

A `Builder` lays nodes out left to right with stable uuid5 ids and wires them by name (n8n's
connections refer to nodes by name: "main" between ordinary nodes, "ai_languageModel" and
"ai_memory" from an AI sub-node into its agent). `add_signature_check` adds the nodes that
check chatd's Standard Webhooks signature behind a Webhook node. Pure: no I/O.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from chatd.n8n.scripts import SIGNATURE_CHECK, SIGNED_CONTENT_JS

WEBHOOK_TYPE = "n8n-nodes-base.webhook"
CODE_TYPE = "n8n-nodes-base.code"
CRYPTO_TYPE = "n8n-nodes-base.crypto"
IF_TYPE = "n8n-nodes-base.if"
RESPOND_TYPE = "n8n-nodes-base.respondToWebhook"
HTTP_REQUEST_TYPE = "n8n-nodes-base.httpRequest"
STOP_AND_ERROR_TYPE = "n8n-nodes-base.stopAndError"
STICKY_NOTE_TYPE = "n8n-nodes-base.stickyNote"

HEADER_AUTH_CREDENTIAL = "chatd X-Webhook-Secret"
SECRET_HEADER = "X-Webhook-Secret"
SECRET_PLACEHOLDER = "REPLACE_WITH_CHAT_WEBHOOK_SECRET"

# Node names of the signature check: connections refer to nodes by name.
WEBHOOK = "chatd webhook"
SIGNED_CONTENT = "Standard Webhooks: signed content"
EXPECTED_SIGNATURE = "HMAC of signed content"
SIGNATURE_OK = "chatd signature valid?"
SETUP_NOTE = "Setup"

NAMESPACE = uuid.UUID("6d3f2f0e-3c1a-5b8e-9a53-c4a7d0c1e8f2")
X0, DX, Y, Y_ALT = 0, 240, 300, 520


class Builder:
    """Nodes and connections of one workflow; `seed` makes its ids differ from other workflows'."""

    def __init__(self, seed: str, type_versions: dict[str, float]) -> None:
        self._seed = seed
        self._type_versions = type_versions
        self.nodes: list[dict[str, Any]] = []
        self.connections: dict[str, dict[str, list[list[dict[str, Any]]]]] = {}
        self._column = 0

    def uuid(self, name: str) -> str:
        return str(uuid.uuid5(NAMESPACE, f"{self._seed}\n{name}"))

    def node(
        self,
        name: str,
        node_type: str,
        parameters: dict[str, Any],
        *,
        credentials: dict[str, Any] | None = None,
        position: list[int] | None = None,
    ) -> dict[str, Any]:
        """Add a node; without `position` it takes the next column of the main row."""
        if position is None:
            position = [X0 + self._column * DX, Y]
            self._column += 1
        node: dict[str, Any] = {
            "parameters": parameters,
            "id": self.uuid(name),
            "name": name,
            "type": node_type,
            "typeVersion": self._type_versions[node_type],
            "position": position,
        }
        if credentials is not None:
            node["credentials"] = credentials
        self.nodes.append(node)
        return node

    def connect(self, source: str, target: str, *, output: int = 0, kind: str = "main") -> None:
        outputs = self.connections.setdefault(source, {}).setdefault(kind, [])
        while len(outputs) <= output:
            outputs.append([])
        outputs[output].append({"node": target, "type": kind, "index": 0})

    def workflow(self, name: str) -> dict[str, Any]:
        """The workflow in n8n's export format, inactive (n8n activates on Publish)."""
        return {
            "name": name,
            "nodes": self.nodes,
            "connections": self.connections,
            "settings": {"executionOrder": "v1"},
            "pinData": {},
            "active": False,
            "tags": [],
        }


def add_webhook(
    builder: Builder, path: str, *, response_mode: str, options: dict[str, Any]
) -> dict[str, Any]:
    """The Webhook node: POST `path`, n8n's Header Auth (X-Webhook-Secret) checked first."""
    webhook = builder.node(
        WEBHOOK,
        WEBHOOK_TYPE,
        {
            "httpMethod": "POST",
            "path": path,
            "authentication": "headerAuth",
            "responseMode": response_mode,
            "options": options,
        },
        credentials={"httpHeaderAuth": {"id": None, "name": HEADER_AUTH_CREDENTIAL}},
    )
    webhook["webhookId"] = builder.uuid("webhookId")
    return webhook


def add_signature_check(builder: Builder) -> None:
    """WEBHOOK -> signed content -> HMAC -> SIGNATURE_OK (output 0 valid, 1 not)."""
    builder.node(SIGNED_CONTENT, CODE_TYPE, {"jsCode": SIGNED_CONTENT_JS})
    builder.node(
        EXPECTED_SIGNATURE,
        CRYPTO_TYPE,
        hmac_params("={{ $json.signedContent }}", "expectedSignature", "base64"),
    )
    builder.node(SIGNATURE_OK, IF_TYPE, boolean_if(builder.uuid("condition"), SIGNATURE_CHECK))
    builder.connect(WEBHOOK, SIGNED_CONTENT)
    builder.connect(SIGNED_CONTENT, EXPECTED_SIGNATURE)
    builder.connect(EXPECTED_SIGNATURE, SIGNATURE_OK)


def hmac_params(value: str, into: str, encoding: str) -> dict[str, Any]:
    return {
        "action": "hmac",
        "type": "SHA256",
        "value": value,
        "dataPropertyName": into,
        "secret": SECRET_PLACEHOLDER,
        "encoding": encoding,
    }


def boolean_if(condition_id: str, expression: str) -> dict[str, Any]:
    return {
        "conditions": {
            "options": {"caseSensitive": True, "leftValue": "", "typeValidation": "strict"},
            "conditions": [
                {
                    "id": condition_id,
                    "leftValue": expression,
                    "rightValue": "",
                    "operator": {"type": "boolean", "operation": "true", "singleValue": True},
                }
            ],
            "combinator": "and",
        },
        "options": {},
    }


def check_url(url: str) -> str:
    base = url.strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"chatd_url must be an absolute http(s) base URL, not {url!r}")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in base):
        raise ValueError("chatd_url must not contain whitespace or control characters")
    return base


def check_path(path: str) -> str:
    cleaned = path.strip().strip("/")
    if not cleaned or any(ch.isspace() or ord(ch) < 0x20 or ch in "?#" for ch in cleaned):
        raise ValueError(f"webhook_path must be a non-empty URL path, not {path!r}")
    return cleaned
