"""A session's conversation as operators export it: JSON (the wire shapes) or plain text."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chatd.core.admin_wire import SessionRecordOut, Transcript
from chatd.core.conversation import AuditEntry
from chatd.core.csat import ShopperRating
from chatd.core.insights_wire import ShopperExport, ShopperSession
from chatd.core.messages import Message, MessageStatus
from chatd.core.responses import wire
from chatd.core.wire import iso

SPEAKERS = {"user": "Shopper", "bot": "Bot", "system": "System", "agent": "Agent"}
NOTED = (MessageStatus.PENDING, MessageStatus.FAILED)  # shown beside a message in text
DONE = {  # an audit entry's action, as a text transcript says it
    "handoff_requested": "asked for a person",
    "taken": "took the conversation over",
    "replied": "replied",
    "transferred": "passed the conversation to another agent",
    "handed_back": "handed the conversation back to the bot",
    "closed": "closed the conversation",
}
BY = {"shopper": "The shopper", "bot": "The bot", "staff": "Staff"}  # detail.by, no agent


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
    session: SessionRecord,
    messages: Iterable[Message],
    rating: ShopperRating | None = None,
    audit: Sequence[AuditEntry] = (),
) -> dict[str, Any]:
    return wire(
        Transcript(
            session=session.to_out(),
            messages=[m.to_out() for m in messages],
            rating=rating.to_out() if rating else None,
            audit=[a.to_out() for a in audit],
        )
    )


def transcript_text(
    session: SessionRecord,
    messages: Iterable[Message],
    rating: ShopperRating | None = None,
    audit: Sequence[AuditEntry] = (),
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
    trail = list(audit)  # oldest first; each goes before the first message after it
    for m in messages:
        while trail and trail[0].created_at < m.created_at:
            lines.append(audit_line(trail.pop(0)))
        speaker = SPEAKERS.get(m.sender_type, m.sender_type)
        if m.sender_type == "agent" and m.metadata and isinstance(m.metadata.get("agentName"), str):
            speaker = f"{speaker} {m.metadata['agentName']}"
        note = f" [{m.status}]" if m.status in NOTED else ""
        text = " ".join(m.content.splitlines())  # one message, one line
        lines.append(f"{iso(m.created_at)} {speaker}{note}: {text}")
        lines += [f"  attachment: {ref}" for ref in attachment_refs(m)]
    lines += [audit_line(entry) for entry in trail]
    return "\n".join(lines) + "\n"


def audit_line(entry: AuditEntry) -> str:
    """One audit entry as a line of its own: `<when> [audit] <who> <did what>`."""
    detail = entry.detail or {}
    who = entry.agent_name or BY.get(str(detail.get("by")), "Someone")
    done = DONE.get(entry.action, entry.action.replace("_", " "))
    reason = detail.get("reason")
    why = f" ({' '.join(reason.splitlines())})" if isinstance(reason, str) and reason else ""
    return f"{iso(entry.created_at)} [audit] {who} {done}{why}"


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
