"""A session's conversation as operators export it: JSON (the wire shapes) or plain text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chatd.core.admin_wire import SessionRecordOut, Transcript
from chatd.core.csat import ShopperRating
from chatd.core.insights_wire import ShopperExport, ShopperSession
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
    tags: tuple[str, ...] = ()  # sorted

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
            tags=list(self.tags),
        )

    def to_wire(self) -> dict[str, Any]:
        return wire(self.to_out())


def transcript_json(
    session: SessionRecord, messages: Iterable[Message], rating: ShopperRating | None = None
) -> dict[str, Any]:
    return wire(
        Transcript(
            session=session.to_out(),
            messages=[m.to_out() for m in messages],
            rating=rating.to_out() if rating else None,
        )
    )


def transcript_text(
    session: SessionRecord, messages: Iterable[Message], rating: ShopperRating | None = None
) -> str:
    """One line per message, oldest first, readable in any mail client or ticket system."""
    who = session.user_id or session.guest_email or "guest"
    lines = [f"Chat {session.id} with {who}, started {iso(session.created_at)}"]
    if session.tags:
        lines.append(f"Tags: {', '.join(session.tags)}")
    if rating is not None:
        comment = " ".join((rating.comment or "").splitlines())
        lines.append(
            f"Rated {rating.rating} of 5 at {iso(rating.created_at)}"
            + (f": {comment}" if comment else "")
        )
    for m in messages:
        speaker = SPEAKERS.get(m.sender_type, m.sender_type)
        if m.sender_type == "agent" and m.metadata and isinstance(m.metadata.get("agentName"), str):
            speaker = f"{speaker} {m.metadata['agentName']}"
        note = f" [{m.status}]" if m.status in NOTED else ""
        text = " ".join(m.content.splitlines())  # one message, one line
        lines.append(f"{iso(m.created_at)} {speaker}{note}: {text}")
        lines += [f"  attachment: {ref}" for ref in attachment_refs(m)]
    return "\n".join(lines) + "\n"


def attachment_refs(message: Message) -> list[str]:
    """The attachments a message links to (chatd stores links, never the files), as text."""
    found = (message.metadata or {}).get("attachments")
    if not isinstance(found, list):
        return []
    refs = []
    for a in found:
        if isinstance(a, dict) and isinstance(a.get("url"), str):
            title = a.get("title")
            refs.append(f"{a['url']} ({title})" if isinstance(title, str) and title else a["url"])
    return refs


def shopper_json(
    named: dict[str, str],
    conversations: Iterable[tuple[SessionRecord, list[Message]]],
    now: datetime,
) -> dict[str, Any]:
    """Everything stored about one shopper, oldest conversation first (a request for their data:
    `chatd shopper export`, POST /api/admin/shoppers/export)."""
    sessions = [
        ShopperSession(session=s.to_out(), messages=[m.to_out() for m in messages])
        for s, messages in conversations
    ]
    return wire(ShopperExport(shopper=named, exportedAt=iso(now), sessions=sessions))
