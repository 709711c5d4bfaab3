"""Transcripts: JSON in the wire shapes, text one line per message, never the token hash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chatd.core.conversation import AuditEntry
from chatd.core.messages import Message, MessageStatus
from chatd.core.transcript import SessionRecord, audit_line, transcript_json, transcript_text

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)


def session(**overrides: Any) -> SessionRecord:
    fields: dict[str, Any] = {
        "id": "s1",
        "user_id": None,
        "guest_email": "ann@example.com",
        "status": "active",
        "metadata": {"page": "/cart"},
        "created_at": T0,
        "updated_at": T0,
        "expires_at": None,
        "last_seq": 2,
        **overrides,
    }
    return SessionRecord(**fields)


def message(seq: int, sender: str, content: str, status: str = "delivered") -> Message:
    return Message(
        id=f"m{seq}",
        session_id="s1",
        sender_type=sender,
        content=content,
        message_type="text",
        metadata=None,
        status=MessageStatus(status),
        seq=seq,
        created_at=T0,
    )


def test_json_has_session_and_wire_messages_but_no_token_hash() -> None:
    doc = transcript_json(session(), [message(1, "user", "hi"), message(2, "bot", "hello")])
    assert doc["session"]["guestEmail"] == "ann@example.com"
    assert doc["session"]["expiresAt"] is None
    assert "token_hash" not in str(doc)
    assert "secret" not in str(doc)
    assert [m["content"] for m in doc["messages"]] == ["hi", "hello"]
    assert doc["messages"][0]["createdAt"] == "2026-11-25T10:00:00Z"


def test_text_is_one_line_per_message_with_speaker_and_problem_status() -> None:
    text = transcript_text(
        session(user_id="u-7"),
        [message(1, "user", "line one\nline two", "failed"), message(2, "bot", "sorry")],
    )
    assert text.splitlines() == [
        "Chat s1 with u-7, started 2026-11-25T10:00:00Z",
        "2026-11-25T10:00:00Z Shopper [failed]: line one line two",
        "2026-11-25T10:00:00Z Bot: sorry",
    ]


def test_audit_lines_say_who_did_what_and_why() -> None:
    def line(action: str, agent: str | None, detail: dict[str, Any] | None) -> str:
        return audit_line(AuditEntry(action, "a1" if agent else None, agent, detail, T0))

    assert (
        line("taken", "Anna", None)
        == "2026-11-25T10:00:00Z [audit] Anna took the conversation over"
    )
    assert line("handoff_requested", None, {"by": "shopper", "reason": "a\nrefund"}) == (
        "2026-11-25T10:00:00Z [audit] The shopper asked for a person (a refund)"
    )
    assert line("closed", None, {"by": "staff"}).endswith("Staff closed the conversation")
    assert line("something_new", None, None).endswith("Someone something new")


def test_audit_entries_go_in_time_order_among_the_messages() -> None:
    later = T0.replace(second=30)
    audit = [
        AuditEntry("taken", "a1", "Anna", None, T0),
        AuditEntry("closed", "a1", "Anna", None, later),
    ]
    text = transcript_text(session(), [message(1, "user", "hi")], audit=audit)
    assert text.splitlines()[1:] == [
        "2026-11-25T10:00:00Z Shopper: hi",  # same instant: the message first
        "2026-11-25T10:00:00Z [audit] Anna took the conversation over",
        "2026-11-25T10:00:30Z [audit] Anna closed the conversation",
    ]
    body = transcript_json(session(), [], audit=audit)
    assert [a["action"] for a in body["audit"]] == ["taken", "closed"]
