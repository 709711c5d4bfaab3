"""A session's conversation as operators export it: JSON (the wire shapes) or plain text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chatd.core.admin_wire import SessionRecordOut, Transcript
from chatd.core.messages import Message, MessageStatus
from chatd.core.responses import wire
from chatd.core.wire import iso

SPEAKERS = {"user": "Shopper", "bot": "Bot", "system": "System", "agent": "Agent"}
NOTED = (MessageStatus.PENDING, MessageStatus.FAILED)  # shown beside a message in text


@dataclass(frozen=True)
class SessionRecord:
    """A session as operators see it: its chat_sessions columns, never its token hash."""

    id: str
    user_id: str | None
    guest_email: str | None
    status: str
    metadata: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    last_seq: int

    def to_out(self) -> SessionRecordOut:
        return SessionRecordOut(
            id=self.id,
            userId=self.user_id,
            guestEmail=self.guest_email,
            status=self.status,
            metadata=self.metadata,
            createdAt=iso(self.created_at),
            updatedAt=iso(self.updated_at),
            expiresAt=iso(self.expires_at) if self.expires_at else None,
            lastSeq=self.last_seq,
        )

    def to_wire(self) -> dict[str, Any]:
        return wire(self.to_out())


def transcript_json(session: SessionRecord, messages: Iterable[Message]) -> dict[str, Any]:
    return wire(Transcript(session=session.to_out(), messages=[m.to_out() for m in messages]))


def transcript_text(session: SessionRecord, messages: Iterable[Message]) -> str:
    """One line per message, oldest first, readable in any mail client or ticket system."""
    who = session.user_id or session.guest_email or "guest"
    lines = [f"Chat {session.id} with {who}, started {iso(session.created_at)}"]
    for m in messages:
        speaker = SPEAKERS.get(m.sender_type, m.sender_type)
        if m.sender_type == "agent" and m.metadata and isinstance(m.metadata.get("agentName"), str):
            speaker = f"{speaker} {m.metadata['agentName']}"
        note = f" [{m.status}]" if m.status in NOTED else ""
        text = " ".join(m.content.splitlines())  # one message, one line
        lines.append(f"{iso(m.created_at)} {speaker}{note}: {text}")
    return "\n".join(lines) + "\n"
