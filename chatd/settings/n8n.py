"""[n8n] (deliveries to the workflow) and [n8n_chat] (n8n's own widget)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from chatd.core.signing import decode_secret
from chatd.settings.base import HttpUrl, Section

# Headers chatd sets on every request to n8n: an auth header may not replace them.
RESERVED_HEADERS = frozenset(
    {
        "accept-encoding",
        "connection",
        "content-length",
        "content-type",
        "host",
        "transfer-encoding",
        "user-agent",
        "webhook-id",
        "webhook-signature",
        "webhook-timestamp",
        "x-chatd-attempt",
        "x-webhook-secret",
    }
)


class N8nSettings(Section):
    webhook_url: HttpUrl = ""  # empty: the built-in demo bot answers
    webhook_secret: str = ""
    previous_secrets: str = ""  # comma-separated older secrets still accepted while rotating
    mode: Literal["webhook", "chat_trigger"] = "webhook"
    timeout_seconds: float = Field(10.0, gt=0)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    max_response_bytes: int = Field(1048576, ge=1024)
    max_reply_length: int = Field(4000, ge=1)
    fallback_reply: str = Field(
        "Sorry, I can't answer right now. Please try again in a moment.", min_length=1
    )
    stream_idle_timeout_seconds: float = Field(60.0, gt=0)
    stream_max_seconds: float = Field(300.0, gt=0)
    basic_auth_user: str = Field("", pattern=r"^[^:\r\n]*$")  # RFC 7617: no colon in the user
    basic_auth_password: str = Field("", pattern=r"^[^\r\n]*$")
    auth_header_name: str = Field("", pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]*$")  # an HTTP token
    auth_header_value: str = Field("", pattern=r"^[ -~]*$")  # printable ASCII: an HTTP value

    @model_validator(mode="after")
    def _secrets_decode(self) -> N8nSettings:
        for secret in self.secrets:
            decode_secret(secret)  # a "whsec_" secret must be valid base64
        return self

    @model_validator(mode="after")
    def _auth(self) -> N8nSettings:
        if self.basic_auth_password and not self.basic_auth_user:
            raise ValueError("n8n.basic_auth_password needs n8n.basic_auth_user")
        if self.basic_auth_user and urlsplit(self.webhook_url).username is not None:
            raise ValueError(
                "n8n.webhook_url carries a user and password already: set either those or"
                " n8n.basic_auth_user, not both"
            )
        if bool(self.auth_header_name) != bool(self.auth_header_value):
            raise ValueError("n8n.auth_header_name and n8n.auth_header_value go together")
        name = self.auth_header_name.lower()
        if name in RESERVED_HEADERS:
            raise ValueError(
                f"n8n.auth_header_name {self.auth_header_name!r} is a header chatd sets itself"
                + (
                    " (n8n.webhook_secret is sent as X-Webhook-Secret)"
                    if name == "x-webhook-secret"
                    else ""
                )
            )
        if name == "authorization" and self.basic_auth_user:
            raise ValueError("set either n8n.basic_auth_user or an Authorization auth header")
        return self

    @property
    def secrets(self) -> tuple[str, ...]:
        """Active secrets, newest first: the first signs, all are accepted."""
        older = (s.strip() for s in self.previous_secrets.split(","))
        return tuple(s for s in (self.webhook_secret, *older) if s)


class N8nChatSettings(Section):
    enabled: bool = False  # POST/GET /api/n8n-chat for n8n's own widget (@n8n/chat); off: 404
    reply_timeout_seconds: float = Field(30.0, gt=0, le=300)
    timeout_reply: str = Field(
        "Thanks! Your answer is taking a little longer; it will be here when you reopen the chat.",
        min_length=1,
    )
