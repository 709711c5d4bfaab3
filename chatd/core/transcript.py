"""A session's conversation as operators export it: JSON (the wire shapes) or plain text."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chatd.core.wire import iso, message_to_wire

SPEAKERS = {"user": "Shopper", "bot": "Bot", "system": "System"}


def session_to_wire(row: Mapping[str, Any]) -> dict[str, Any]:
    """A session row (chat_sessions columns) for operators: never its token hash."""
    return {
        "id": row["id"],
        "userId": row["user_id"],
        "guestEmail": row["guest_email"],
        "status": row["status"],
        "metadata": row["metadata"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "expiresAt": iso(row["expires_at"]) if row["expires_at"] else None,
        "lastSeq": row["last_seq"],
    }


def transcript_json(
    session: Mapping[str, Any], messages: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    return {"session": session_to_wire(session), "messages": [message_to_wire(m) for m in messages]}


def transcript_text(session: Mapping[str, Any], messages: Iterable[Mapping[str, Any]]) -> str:
    """One line per message, oldest first, readable in any mail client or ticket system."""
    who = session["user_id"] or session["guest_email"] or "guest"
    lines = [f"Chat {session['id']} with {who}, started {iso(session['created_at'])}"]
    for m in messages:
        speaker = SPEAKERS.get(m["sender_type"], m["sender_type"])
        note = f" [{m['status']}]" if m["status"] in ("pending", "failed") else ""
        text = " ".join(str(m["content"]).splitlines())  # one message, one line
        lines.append(f"{iso(m['created_at'])} {speaker}{note}: {text}")
    return "\n".join(lines) + "\n"
