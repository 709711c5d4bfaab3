"""The staff API's bodies (sign-in, the inbox, handoff requests) as pydantic models: requests
strict with unknown fields refused, query parameters, and answers (shown in the OpenAPI document).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatd.core.ids import Id
from chatd.core.responses import IdText, MessageOut, Out, Timestamp
from chatd.core.wire import AttachmentIds, Content

MAX_INBOX_LIMIT = 200
MAX_REASON = 200


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SignInRequest(_Request):
    email: Annotated[str, Field(min_length=3, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class AgentReplyRequest(_Request):
    content: Content = ""
    attachments: AttachmentIds | None = Field(
        default=None, description="attachmentIds from POST /api/inbox/upload, in order"
    )


class TransferRequest(_Request):
    agentId: Id


class HandoffRequest(_Request):
    sessionId: Id
    reason: Annotated[str, Field(max_length=MAX_REASON)] = ""


class InboxQuery(_Request):
    view: Literal["waiting", "mine", "open", "closed"] = "open"
    limit: Annotated[int, Field(ge=1, le=MAX_INBOX_LIMIT)] = 50


class AgentOut(Out):
    id: IdText
    name: str
    email: str
    role: Literal["admin", "agent"]


class StaffSession(Out):
    agent: AgentOut
    csrfToken: str = Field(description="send it as X-CSRF-Token on every POST")


class SignedOut(Out):
    signedOut: Literal[True]


class Agents(Out):
    agents: list[AgentOut]


class ConversationOut(Out):
    sessionId: IdText
    state: Literal["bot", "waiting", "human", "closed"]
    agentId: IdText | None
    agentName: str | None
    handoffReason: str | None
    stateChangedAt: Timestamp
    userId: str | None
    guestEmail: str | None
    metadata: dict[str, Any] | None
    userContext: dict[str, Any]
    createdAt: Timestamp
    updatedAt: Timestamp
    lastSeq: int
    lastSender: str | None
    lastContent: str | None
    lastAt: Timestamp | None
    lastReadSeq: int = Field(0, description="the seq of the last message you have seen")
    unread: int = Field(0, description="the shopper's messages after it (at most 100)")


class Conversations(Out):
    conversations: list[ConversationOut]


class AuditOut(Out):
    action: str
    agentId: IdText | None
    agentName: str | None
    detail: dict[str, Any] | None
    at: Timestamp


class ConversationDetail(Out):
    conversation: ConversationOut
    messages: list[MessageOut]
    audit: list[AuditOut]


class ConversationChanged(Out):
    conversation: ConversationOut
    message: MessageOut = Field(description="the system message that told everyone")


class AgentReplied(Out):
    message: MessageOut


class HandoffAccepted(Out):
    state: Literal["bot", "waiting", "human", "closed"]
    message: MessageOut | None = Field(description="null: a person was asked for already")
