"""Response bodies of the public HTTP API as pydantic models: the routes build their answers with
them and the OpenAPI document (chatd/http/openapi.py) is generated from them, so the two agree.

Unknown fields are refused here too (extra="forbid"): a field a route adds must be added here.
`wire()` drops only the optional keys a route did not set (`field` of an error, `error` of
health), never a null it set on purpose.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatd.core.ids import ID_PATTERN

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
IdText = Annotated[str, Field(json_schema_extra={"format": "uuid", "pattern": ID_PATTERN})]
Count = Annotated[int, Field(ge=0)]


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def wire(body: Out) -> dict[str, Any]:
    """The JSON object a route answers with."""
    return body.model_dump(mode="json", exclude_unset=True)


class ErrorDetail(Out):
    code: str = Field(description="stable, machine-readable: e.g. invalid_id, invalid_session")
    message: str = Field(description="for people; may change between versions")
    field: str | None = Field(
        default=None, description="the body field, query parameter or path part at fault"
    )


class ErrorBody(Out):
    """Every 4xx and 503 answer of chatd."""

    error: ErrorDetail


# --- chat --------------------------------------------------------------------------------------

SessionStatus = Literal["active", "closed", "expired"]
MessageStatusText = Literal["pending", "sent", "delivered", "failed"]


AttachmentKind = Literal["image", "file"]
SignedLink = Annotated[
    str,
    Field(
        description="signed, short-lived: works without a session token until it expires;"
        " every read of the message signs anew"
    ),
]


class AttachmentOut(Out):
    """A file a message carries."""

    id: IdText
    name: str = Field(description="sanitised for display; its extension matches its type")
    type: str = Field(description="the MIME type its bytes were sniffed as")
    size: Count
    kind: AttachmentKind
    width: Annotated[int, Field(ge=1)] | None = None
    height: Annotated[int, Field(ge=1)] | None = None
    url: SignedLink
    thumbnailUrl: SignedLink | None = None


class UploadAccepted(Out):
    """A stored file: send its attachmentId with a message (within a day, in the same session)."""

    attachmentId: IdText
    name: str
    type: str
    size: Count
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
    kind: AttachmentKind
    width: Annotated[int, Field(ge=1)] | None = None
    height: Annotated[int, Field(ge=1)] | None = None
    url: SignedLink
    thumbnailUrl: SignedLink | None = None
    expiresAt: Timestamp = Field(description="when url and thumbnailUrl stop working")


class MessageOut(Out):
    """A stored message, as every API, event and transcript shows it."""

    id: IdText
    sessionId: IdText
    senderType: Literal["user", "bot", "system", "agent"] = Field(
        description="agent: a person from the shop; metadata.agentName is their name"
    )
    content: str
    messageType: Literal["text", "quick_reply", "rich_content"]
    metadata: dict[str, Any] | None
    status: MessageStatusText
    seq: Annotated[int, Field(ge=1)]
    createdAt: Timestamp
    attachments: list[AttachmentOut] | None = Field(
        default=None, description="the files it carries; absent when none"
    )


class SessionCreated(Out):
    sessionId: IdText
    sessionToken: str = Field(description="send it as `Authorization: Bearer <sessionToken>`")
    status: SessionStatus
    expiresAt: Timestamp


class SessionView(Out):
    sessionId: IdText
    status: SessionStatus = Field(description="closed or expired: the conversation has ended")
    messages: list[MessageOut] = Field(description="the most recent ones, oldest first")
    metadata: dict[str, Any] | None
    expiresAt: Timestamp
    ratingRequested: bool = Field(
        default=False, description="it ended and the shopper should be asked for a rating"
    )
    rated: bool = Field(default=False, description="the shopper rated this conversation")


class MessageAccepted(Out):
    messageId: IdText
    status: MessageStatusText
    timestamp: Timestamp
    seq: Annotated[int, Field(ge=1)]


class Pagination(Out):
    page: Annotated[int, Field(ge=1)]
    limit: Annotated[int, Field(ge=1)]
    total: Count


class StreamingReply(Out):
    """A reply streaming now: all its text so far (chatd/PROTOCOL.md)."""

    messageId: IdText = Field(description="the id the stored reply will have")
    replyTo: IdText | None = Field(description="the shopper's message it answers")
    index: Annotated[int, Field(ge=0)] = Field(description="of the last piece in `text`")
    text: str


class MessagePage(Out):
    messages: list[MessageOut]
    pagination: Pagination
    streaming: list[StreamingReply] | None = Field(
        default=None,
        description="with streamVersion: every reply of the session streaming now, in the"
        " order they began",
    )
    streamVersion: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="with streamVersion: the version to send next"
    )


class CallbackAccepted(Out):
    success: Literal[True]
    messageId: IdText | None = Field(description="null: not stored (see held)")
    duplicate: bool = Field(description="true: this reply was stored before, and not again")
    held: bool = Field(
        False,
        description="true: an agent holds the conversation; the bot's reply is not shown",
    )


# --- health ------------------------------------------------------------------------------------

CheckState = Literal["healthy", "warning", "unhealthy", "unknown"]


class HealthChecks(Out):
    database: Literal["healthy", "unhealthy"]
    queue: CheckState
    webhook: CheckState


class HealthMetrics(Out):
    pendingWebhooks: Count
    activeSessions: Count
    messagesLast24h: Count
    deadLetters: Count
    oldestPendingSeconds: Annotated[float, Field(ge=0)]
    webhookSuccessRate: Annotated[float, Field(ge=0, le=1)] | None


class Health(Out):
    """The guide's health format: 200 unless the database is unreachable (503 "unhealthy")."""

    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: Timestamp
    checks: HealthChecks
    metrics: HealthMetrics | None = None
    lastWebhookError: str | None = None
    error: str | None = None


class Liveness(Out):
    status: Literal["alive"]


class ReadinessChecks(Out):
    accepting: Literal["yes", "no (shutting down)"]
    listen: Literal["up", "down"]
    database: Literal["up", "down"]


class Readiness(Out):
    status: Literal["ready", "not_ready"]
    checks: ReadinessChecks
