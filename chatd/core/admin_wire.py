"""The admin API's bodies as pydantic models: requests (strict, unknown fields refused), query
parameters and answers. Routes build their answers with them; the OpenAPI document shows them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatd.core.csat import RatingOut
from chatd.core.inbox_wire import AuditOut
from chatd.core.responses import Count, IdText, MessageOut, Out, SessionStatus, Timestamp
from chatd.core.tags import TAG_PATTERN

MAX_DEAD_LIMIT = 1000
MAX_SESSION_LIMIT = 200
MAX_SEARCH_LENGTH = 255
MAX_PURGE_AGE_SECONDS = 100 * 365 * 86400


Tag = Annotated[str, Field(json_schema_extra={"pattern": TAG_PATTERN})]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PurgeRequest(_Request):
    olderThanSeconds: Annotated[float, Field(ge=0, le=MAX_PURGE_AGE_SECONDS)]


class BroadcastRequest(_Request):
    content: Annotated[str, Field(min_length=1, json_schema_extra={"pattern": r"\S"})]
    metadata: dict[str, Any] | None = None  # only sessions whose metadata contains this


# --- query parameters (chatd.core.query parses them) --------------------------------------------


class DeadQuery(_Request):
    limit: Annotated[int, Field(ge=1, le=MAX_DEAD_LIMIT)] = 100


class SessionsQuery(_Request):
    limit: Annotated[int, Field(ge=1, le=MAX_SESSION_LIMIT)] = 50
    status: Literal["active", "all"] = "active"
    q: Annotated[
        str,
        Field(
            max_length=MAX_SEARCH_LENGTH,
            # Control characters are refused by chatd.core.query; the schema says it too.
            json_schema_extra={"pattern": "^[^\\u0000-\\u001f\\u007f]*$"},
            description="prefix of the session id, user id or guest email (case-insensitive)",
        ),
    ] = ""
    tag: Annotated[
        str,
        Field(max_length=MAX_SEARCH_LENGTH, description="only conversations with this tag"),
    ] = ""


class TranscriptQuery(_Request):
    format: Literal["json", "text"] = "json"
    download: Literal["0", "1"] = "0"


# --- answers -----------------------------------------------------------------------------------


class QueueFigures(Out):
    pending: Count
    processing: Count
    completedLastHour: Count
    dead: Count
    oldestPendingSeconds: Annotated[float, Field(ge=0)]


class Bucket(Out):
    start: Timestamp
    received: Count
    completed: Count


class Throughput(Out):
    bucketSeconds: int
    buckets: list[Bucket]


class WebhookTarget(Out):
    kind: Literal["n8n", "demo"]
    url: str | None = Field(description="without credentials; null for the built-in demo bot")


class ClusterWebhook(Out):
    windowSeconds: int
    attempts: Count
    failures: Count
    completed: Count
    retrying: Count
    dead: Count
    failureRate: Annotated[float, Field(ge=0, le=1)] | None


class ProcessWebhook(Out):
    delivered: Count
    retried: Count
    dead: Count
    rescued: Count
    ownerRescues: Count
    lostLeases: Count
    invalidReplies: Count
    inFlight: Count


class WebhookHealth(Out):
    status: Literal["healthy", "warning", "unhealthy", "unknown"]
    dispatching: bool = Field(description="whether this process delivers to n8n")
    target: WebhookTarget
    successRate: Annotated[float, Field(ge=0, le=1)] | None
    lastError: str | None
    cluster: ClusterWebhook
    process: ProcessWebhook | None = Field(default=None, description="only when dispatching")


class LiveSessions(Out):
    live: Count


class ProcessFigures(Out):
    connections: Count
    actors: Count
    actorRestarts: Count
    closeCodes: dict[str, int]
    signatureFailures: dict[str, int]


class RecentError(Out):
    jobId: IdText
    sessionId: IdText
    messageId: IdText
    content: str
    status: str
    error: str | None
    httpStatus: int | None
    at: Timestamp


class Overview(Out):
    generatedAt: Timestamp
    queue: QueueFigures
    throughput: Throughput
    webhook: WebhookHealth
    sessions: LiveSessions
    process: ProcessFigures
    recentErrors: list[RecentError]


class DeadLetterOut(Out):
    jobId: IdText
    sessionId: IdText
    messageId: IdText
    content: str
    attempts: Count
    maxAttempts: Count
    httpStatus: int | None
    lastError: str | None
    createdAt: Timestamp
    deadAt: Timestamp


class DeadLetters(Out):
    deadLetters: list[DeadLetterOut]
    limit: int


class Retried(Out):
    retried: Count


class Purged(Out):
    purged: Count


class Broadcasted(Out):
    sessions: Count = Field(description="how many live sessions got the message")


class SessionRecordOut(Out):
    id: IdText
    userId: str | None
    guestEmail: str | None
    status: SessionStatus
    metadata: dict[str, Any] | None
    createdAt: Timestamp
    updatedAt: Timestamp
    expiresAt: Timestamp | None
    lastSeq: Count
    tags: list[Tag] = Field(description="the conversation's tags, sorted")


class LastMessage(Out):
    senderType: Literal["user", "bot", "system", "agent"]
    content: str
    createdAt: Timestamp


class SessionSummaryOut(SessionRecordOut):
    live: bool
    messageCount: Count
    lastMessage: LastMessage | None
    connectedHere: bool = Field(description="a WebSocket or SSE client of it is on this process")


class Sessions(Out):
    sessions: list[SessionSummaryOut]


class Transcript(Out):
    session: SessionRecordOut
    messages: list[MessageOut]
    rating: RatingOut | None = Field(default=None, description="the shopper's rating, if any")
    audit: list[AuditOut] = Field(
        default_factory=list,
        description="who asked for a person, took, replied, transferred, handed back, closed",
    )
