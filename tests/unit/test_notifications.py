"""chatd_events payloads: what the event router accepts (chatd/realtime/router.py)."""

from __future__ import annotations

import json

import pytest

from chatd.realtime.router import parse_notification


def test_the_triggers_payloads_are_accepted() -> None:
    new = {"type": "new_message", "sessionId": "s", "messageId": "m", "seq": 3}
    status = {"type": "message_status", "sessionId": "s", "messageId": "m", "status": "sent"}
    typing = {"type": "bot_typing", "sessionId": "s", "isTyping": True}
    staff_note = {"type": "note", "sessionId": "s", "noteId": "n"}
    for note in (new, status, typing, staff_note):
        assert parse_notification(json.dumps(note)) == note


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "not json",
        "[]",
        '"new_message"',
        '{"sessionId": "s"}',
        '{"type": "other", "sessionId": "s"}',
        '{"type": "bot_typing"}',
        '{"type": "bot_typing", "sessionId": ["s"]}',
        '{"type": "new_message", "sessionId": "s"}',
        '{"type": "new_message", "sessionId": "s", "messageId": 5, "seq": 1}',
        '{"type": "new_message", "sessionId": "s", "messageId": "m"}',
        '{"type": "new_message", "sessionId": "s", "messageId": "m", "seq": "1"}',
        '{"type": "note", "sessionId": "s"}',
        '{"type": "note", "sessionId": "s", "noteId": 7}',
    ],
)
def test_anything_else_is_refused(payload: str) -> None:
    assert parse_notification(payload) is None


def test_a_relays_stream_notification_is_accepted() -> None:
    note = {
        "type": "stream",
        "origin": "p1",
        "items": [
            {"sessionId": "s", "messageId": "m", "replyTo": "u", "attempt": "a", "index": 0,
             "pieces": ["Hel", "lo"]},
            {"sessionId": "s", "messageId": "m", "replyTo": None, "attempt": "a", "index": 2,
             "pieces": ["!"]},
            {"sessionId": "s", "messageId": "m", "end": "failed"},
        ],
    }  # fmt: skip
    assert parse_notification(json.dumps(note)) == note


@pytest.mark.parametrize(
    "item",
    [
        "not an object",
        {"messageId": "m", "end": "failed"},
        {"sessionId": "s", "messageId": 1, "end": "failed"},
        {"sessionId": "s", "messageId": "m", "end": 3},
        {"sessionId": "s", "messageId": "m", "attempt": "a", "index": 0, "pieces": []},
        {"sessionId": "s", "messageId": "m", "attempt": "a", "index": -1, "pieces": ["x"]},
        {"sessionId": "s", "messageId": "m", "attempt": "a", "index": True, "pieces": ["x"]},
        {"sessionId": "s", "messageId": "m", "attempt": "a", "index": 0, "pieces": [1]},
        {"sessionId": "s", "messageId": "m", "index": 0, "pieces": ["x"]},
        {
            "sessionId": "s",
            "messageId": "m",
            "replyTo": 5,
            "attempt": "a",
            "index": 0,
            "pieces": ["x"],
        },
    ],
)
def test_a_stream_notification_with_a_bad_item_is_refused_whole(item: object) -> None:
    good = {"sessionId": "s", "messageId": "m", "end": "failed"}
    payload = json.dumps({"type": "stream", "origin": "p", "items": [good, item]})
    assert parse_notification(payload) is None
    assert parse_notification(json.dumps({"type": "stream", "items": "x"})) is None
