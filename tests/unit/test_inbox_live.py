"""The inbox's live extras without I/O: a held conversation's streams (realtime/streams.py), the
agent's typing frame and its throttle (core/inbox_live.py), and their notifications' checks."""

from __future__ import annotations

import json

import pytest

from chatd.core.inbox_live import MAX_TYPING_SESSIONS, TypingGate, parse_inbox_frame
from chatd.errors import BadRequest
from chatd.realtime.router import parse_notification
from chatd.realtime.streams import LiveStreams

S, R = "session-1", "user-message-1"
ID = "8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77"


def pieces(streams: LiveStreams, message: str, index: int, text: str, now: float = 0.0) -> int:
    return len(streams.pieces(S, message, R, "a1", index, [text], local=True, now=now))


def test_holding_withdraws_the_streams_and_shows_no_new_one_until_released() -> None:
    streams = LiveStreams(ttl=60)
    assert pieces(streams, "m1", 0, "Your ") == 1
    (withdrawn,) = streams.hold(S, now=1.0)
    assert withdrawn.message_id == "m1"
    assert streams.of_session(S) == []
    assert pieces(streams, "m1", 1, "order") == 0  # the rest of it, still on its way
    assert pieces(streams, "m2", 0, "A new one") == 0  # begun while held (an earlier job)
    assert streams.is_gone("m1")
    assert streams.is_gone("m2")
    assert streams.hold(S, now=2.0) == []  # held again (a transfer): nothing more to withdraw
    streams.release(S)
    assert pieces(streams, "m3", 0, "Back") == 1


def test_a_hold_lasts_no_longer_than_a_stream_could_and_a_gap_forgets_it() -> None:
    streams = LiveStreams(ttl=60)
    streams.hold(S, now=0.0)
    assert pieces(streams, "m1", 0, "x", now=59.0) == 0
    streams.expire(now=61.0)
    assert pieces(streams, "m2", 0, "y", now=61.0) == 1
    streams.hold(S, now=62.0)
    streams.heard_gap()  # a hand-back may have been missed: fail open (held replies are
    assert pieces(streams, "m3", 0, "z", now=63.0) == 1  # withdrawn at their end anyway)


def test_a_typing_frame_is_checked_field_by_field() -> None:
    frame = parse_inbox_frame(
        json.dumps({"type": "typing", "sessionId": ID.upper(), "isTyping": True})
    )
    assert (frame.sessionId, frame.isTyping) == (ID, True)
    for text, code in [
        ("{", "invalid_json"),
        ("", "invalid_json"),
        ("[]", "invalid_body"),
        (json.dumps({"type": "typing", "sessionId": ID}), "missing_field"),
        (json.dumps({"type": "typing", "sessionId": ID, "isTyping": "yes"}), "invalid_field"),
        (json.dumps({"type": "typing", "sessionId": "x", "isTyping": True}), "invalid_id"),
        (
            json.dumps({"type": "typing", "sessionId": ID, "isTyping": True, "a": 1}),
            "unknown_field",
        ),
        (json.dumps({"type": "wave", "sessionId": ID, "isTyping": True}), "invalid_field"),
        ("x" * 2000, "invalid_frame"),
    ]:
        with pytest.raises(BadRequest) as caught:
            parse_inbox_frame(text)
        assert caught.value.code == code, text
    with pytest.raises(BadRequest):
        parse_inbox_frame(b"{}")


def test_typing_goes_on_a_change_at_once_and_the_same_value_once_a_second() -> None:
    gate = TypingGate()
    assert gate.allow("a", True, 0.0)
    assert not gate.allow("a", True, 0.5)
    assert gate.allow("b", True, 0.5)  # each conversation its own
    assert gate.allow("a", False, 0.6)
    assert gate.allow("a", True, 0.7)
    assert gate.allow("a", True, 1.8)
    for n in range(MAX_TYPING_SESSIONS + 10):  # bounded: the oldest forgotten
        gate.allow(f"s{n}", True, 2.0)
    assert len(gate._throttles) == MAX_TYPING_SESSIONS
    gate.relayed("a", True)
    gate.relayed("b", True)
    gate.relayed("a", False)
    assert gate.typing == {"b"}


def test_the_new_notifications_are_checked_before_they_are_routed() -> None:
    good = [
        {"type": "staff_signed_out", "agentId": "a"},
        {"type": "conversation_read", "agentId": "a", "sessionId": S, "lastReadSeq": 3},
        {"type": "stream_hold", "sessionId": S, "held": True},
    ]
    for note in good:
        assert parse_notification(json.dumps(note)) == note
    bad = [
        {"type": "staff_signed_out"},
        {"type": "staff_signed_out", "agentId": 1},
        {"type": "conversation_read", "agentId": "a", "sessionId": S},
        {"type": "conversation_read", "sessionId": S, "lastReadSeq": 3},
        {"type": "stream_hold", "sessionId": S},
        {"type": "stream_hold", "sessionId": S, "held": "yes"},
    ]
    for note in bad:
        assert parse_notification(json.dumps(note)) is None, note
