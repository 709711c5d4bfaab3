"""chatd_events payloads: what the event router accepts (chatd/realtime/router.py)."""

from __future__ import annotations

import json

import pytest

from chatd.realtime.router import parse_notification


def test_the_triggers_payloads_are_accepted() -> None:
    new = {"type": "new_message", "sessionId": "s", "messageId": "m", "seq": 3}
    status = {"type": "message_status", "sessionId": "s", "messageId": "m", "status": "sent"}
    typing = {"type": "bot_typing", "sessionId": "s", "isTyping": True}
    for note in (new, status, typing):
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
    ],
)
def test_anything_else_is_refused(payload: str) -> None:
    assert parse_notification(payload) is None
