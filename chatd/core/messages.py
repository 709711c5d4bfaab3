"""Chat messages between layers: what a shopper or the bot sends, and a message as stored.

Statuses are StrEnums: they are their strings, so JSON, SQL parameters and comparisons with
what PostgreSQL returns see exactly the values they always did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from chatd.core.attachments import MessageFile
from chatd.core.responses import MessageOut, wire
from chatd.core.wire import iso


class MessageStatus(StrEnum):
    PENDING = "pending"  # stored and queued for n8n
    SENT = "sent"  # n8n took it; a reply may follow by callback
    DELIVERED = "delivered"  # answered (and every bot or system message)
    FAILED = "failed"  # dead-lettered: the fallback reply answered it


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"  # claimed under a lease
    COMPLETED = "completed"
    FAILED = "failed"
    DEAD = "dead"  # out of attempts: a dead letter


@dataclass(frozen=True)
class NewMessage:
    """A shopper's message as sent (REST or WebSocket), before it is stored."""

    content: str
    message_type: str
    metadata: dict[str, Any] | None
    client_message_id: str | None
    attachments: tuple[str, ...] = ()  # ids of files this session uploaded, in order


@dataclass(frozen=True)
class BotMessage:
    """A reply to store (from n8n's response, a callback, or the fallback), once by reply_key."""

    session_id: str
    content: str
    message_type: str
    metadata: dict[str, Any] | None
    reply_to: str | None
    reply_key: str
    sender_type: str = "bot"
    handoff: str | None = None  # the bot asks for a person, with this reason


@dataclass(frozen=True)
class StreamedPart:
    """One run of a streamed reply: a bot message, stored under the id its pieces carried."""

    message_id: str
    content: str
    reply_key: str


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message, built once where it is read and shared by everyone it is sent to."""

    id: str
    session_id: str
    sender_type: str  # "user", "bot", "system" or "agent"
    content: str
    message_type: str
    metadata: dict[str, Any] | None
    status: MessageStatus
    seq: int
    created_at: datetime
    attachments: tuple[MessageFile, ...] = ()  # with URLs signed when the message was read
    # The user message a reply answers (chat_messages.reply_to; None: not one, or not read).
    # Internal: @n8n/chat's waiting request takes the reply to its own message by it.
    reply_to: str | None = None

    def to_out(self) -> MessageOut:
        """The shape every API, event and transcript uses (`attachments` only when there are)."""
        out = MessageOut(
            id=self.id,
            sessionId=self.session_id,
            senderType=self.sender_type,
            content=self.content,
            messageType=self.message_type,
            metadata=self.metadata,
            status=self.status.value,
            seq=self.seq,
            createdAt=iso(self.created_at),
        )
        if not self.attachments:
            return out
        files = [file.to_out() for file in self.attachments]
        return out.model_copy(update={"attachments": files})

    def to_wire(self) -> dict[str, Any]:
        return wire(self.to_out())
