"""The @n8n/chat mapping: requests, the id space, history entries, degraded replies, NDJSON."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from chatd.core.attachments import MessageFile
from chatd.core.messages import Message, MessageStatus
from chatd.core.n8n_chat import (
    MAX_QUERY_BYTES,
    answers,
    history_entry,
    parse_body,
    parse_query_args,
    reply_text,
    session_key,
    stream_line,
    streaming_text,
)
from chatd.core.n8n_chat_stream import ReplyLines
from chatd.core.tokens import token_hash
from chatd.core.wire import Limits
from chatd.errors import BadRequest

LIMITS = Limits(max_message_length=10, metadata_max_bytes=100, metadata_max_depth=3)
UUID = "8C1E7F0A-4D3B-4A53-9B1E-2F6D0C9A1B77"


def test_send_message_is_parsed_and_the_uuid_lowercased() -> None:
    body = {"action": "sendMessage", "sessionId": UUID, "chatInput": "hi", "metadata": {"a": 1}}
    parsed = parse_body(body, LIMITS)
    assert (parsed.action, parsed.session_id, parsed.chat_input) == (
        "sendMessage",
        UUID.lower(),
        "hi",
    )
    assert parsed.metadata == {"a": 1}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sessionId": UUID}, "action"),
        ({"action": "nope", "sessionId": UUID}, "action"),
        ({"action": "sendMessage", "sessionId": "abc"}, "sessionId"),
        ({"action": "sendMessage", "sessionId": UUID}, "chatInput"),
        ({"action": "sendMessage", "sessionId": UUID, "chatInput": "x" * 11}, "chatInput"),
        ({"action": "sendMessage", "sessionId": UUID, "chatInput": ["x"]}, "chatInput"),
        (
            {
                "action": "sendMessage",
                "sessionId": UUID,
                "chatInput": "x",
                "metadata": {"a": "x" * 100},
            },
            "metadata",
        ),
    ],
)
def test_bad_requests_name_their_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_body(body, LIMITS)
    assert caught.value.field == field


def test_load_previous_session_needs_no_input() -> None:
    parsed = parse_body({"action": "loadPreviousSession", "sessionId": UUID}, LIMITS)
    assert parsed.chat_input is None


def test_a_query_takes_json_metadata_and_ignores_other_text() -> None:
    args = {"action": "sendMessage", "sessionId": UUID, "chatInput": "hi"}
    assert parse_query_args({**args, "metadata": '{"p": 1}'}, 10, LIMITS).metadata == {"p": 1}
    assert parse_query_args({**args, "metadata": "[object Object]"}, 10, LIMITS).metadata is None
    with pytest.raises(BadRequest, match="longer than"):
        parse_query_args(args, MAX_QUERY_BYTES + 1, LIMITS)


def test_the_key_is_in_its_own_space() -> None:
    key = session_key(UUID)
    assert key == session_key(UUID.lower())
    assert key == hashlib.sha256(f"n8n-chat:{UUID.lower()}".encode()).digest()
    assert key != token_hash(UUID.lower())  # the UUID as a chatd session token opens nothing


def test_history_entries_have_langchains_shape() -> None:
    human = history_entry("user", "hi").model_dump()
    assert human == {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain_core", "messages", "HumanMessage"],
        "kwargs": {"content": "hi", "additional_kwargs": {}, "response_metadata": {}},
    }
    assert history_entry("bot", "x").id[-1] == "AIMessage"
    assert history_entry("system", "x").id[-1] == "AIMessage"


def test_rich_replies_degrade_to_markdown() -> None:
    metadata = {
        "quickReplies": ["Yes *please*", "No"],
        "attachments": [
            {"type": "image", "url": "https://cdn.example/a b.png", "title": "Boot"},
            {"type": "image", "url": "http://plain.example/x.png"},
            {"type": "file", "url": "https://shop.example/(x).pdf", "title": "Invoice"},
        ],
    }
    assert reply_text("Pick:", metadata) == (
        "Pick:\n\n- Yes \\*please\\*\n- No\n\n"
        "- ![Boot](https://cdn.example/a%20b.png)\n"
        "- [http://plain.example/x.png](http://plain.example/x.png)\n"
        "- [Invoice](https://shop.example/%28x%29.pdf)"
    )
    assert reply_text("plain", None) == "plain"
    assert reply_text("plain", {"fallback": True}) == "plain"


def test_stream_lines_are_ndjson_the_widget_reads() -> None:
    begin, item = stream_line("begin"), stream_line("item", "héllo")
    assert begin.endswith(b"\n")
    assert json.loads(begin) == {"type": "begin", "metadata": {"nodeId": "chatd", "runIndex": 0}}
    assert json.loads(item)["content"] == "héllo"


# --- the streaming body's lines ---------------------------------------------------------------


def stored(message_id: str, content: str, sender: str = "bot") -> Message:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    return Message(
        message_id, "s", sender, content, "text", None, MessageStatus.DELIVERED, 2, created
    )


def lines(out: bytes) -> list[tuple[str, int, str | None]]:
    parsed = [json.loads(line) for line in out.splitlines()]
    return [(p["type"], p["metadata"]["runIndex"], p.get("content")) for p in parsed]


def piece(
    index: int, text: str, kind: str = "message_delta", reply_to: str = "u1"
) -> dict[str, object]:
    return {"type": kind, "messageId": "b1", "replyTo": reply_to, "index": index, "text": text}


def test_a_reply_that_does_not_stream_is_one_run_with_one_item() -> None:
    reply = ReplyLines("u1")
    assert reply.on_event({"type": "new_message"}, stored("u2", "other tab", "user")) == b""
    out = reply.on_event({"type": "new_message"}, stored("b1", "Hello"))
    assert lines(out) == [("begin", 0, None), ("item", 0, "Hello"), ("end", 0, None)]
    assert reply.done


def test_pieces_grow_the_run_and_the_stored_reply_adds_only_the_rest() -> None:
    reply = ReplyLines("u1")
    out = reply.on_event(piece(0, "Hel"), None)
    out += reply.on_event(piece(0, "Hel"), None)  # a repeat: nothing
    out += reply.on_event(piece(3, "!"), None)  # a gap: nothing
    out += reply.on_event(piece(1, "lo"), None)
    out += reply.on_event(piece(2, "Hello, you", kind="message_stream"), None)  # snapshot
    out += reply.on_event(piece(0, "x", reply_to="other"), None)  # another message's reply
    assert not reply.done
    out += reply.on_event({"type": "new_message"}, stored("b1", "Hello, you!"))
    assert lines(out) == [
        ("begin", 0, None),
        ("item", 0, "Hel"),
        ("item", 0, "lo"),
        ("item", 0, ", you"),
        ("item", 0, "!"),
        ("end", 0, None),
    ]
    assert reply.done


def test_a_withdrawn_stream_ends_its_run_and_what_follows_is_a_new_one() -> None:
    reply = ReplyLines("u1")
    out = reply.on_event(piece(0, "half"), None)
    out += reply.on_event(
        {"type": "message_stream_end", "messageId": "b1", "reason": "failed"}, None
    )
    out += reply.on_event({"type": "new_message"}, stored("f1", "Sorry"))
    assert lines(out) == [
        ("begin", 0, None),
        ("item", 0, "half"),
        ("end", 0, None),
        ("begin", 1, None),
        ("item", 1, "Sorry"),
        ("end", 1, None),
    ]


def test_time_out_closes_the_open_run_and_adds_the_note() -> None:
    reply = ReplyLines("u1")
    out = reply.on_event(piece(0, "slow"), None) + reply.timed_out("still working")
    assert lines(out)[-4:] == [
        ("end", 0, None),
        ("begin", 1, None),
        ("item", 1, "still working"),
        ("end", 1, None),
    ]
    assert reply.done


def test_a_request_takes_the_reply_to_its_own_message_or_to_none() -> None:
    mine = replace(stored("b1", "re: apples"), reply_to="u1")
    theirs = replace(stored("b2", "re: pears"), reply_to="u2")
    agent = replace(stored("a1", "Hi, Ann here", "agent"), reply_to=None)
    assert answers(mine, "u1")
    assert not answers(theirs, "u1")
    assert answers(agent, "u1")  # answers nobody in particular: any request may show it
    assert not answers(replace(stored("u2", "pears", "user"), reply_to=None), "u1")
    reply = ReplyLines("u1")
    assert reply.on_event({"type": "new_message"}, theirs) == b""
    assert not reply.done
    assert lines(reply.on_event({"type": "new_message"}, mine))[1] == ("item", 0, "re: apples")


def test_a_shoppers_files_and_a_reply_still_streaming_in_history() -> None:
    photo = MessageFile(
        "f1", "dent (1).jpg", "image/jpeg", 10, "image", 4, 3, "https://c/f/1?sig=a", None
    )
    bill = MessageFile(
        "f2", "bill.pdf", "application/pdf", 9, "file", None, None, "http://c/f/2", None
    )
    assert reply_text("look", None, [photo, bill]) == (
        "look\n\n- ![dent \\(1\\).jpg](https://c/f/1?sig=a)\n- [bill.pdf](http://c/f/2)"
    )
    assert reply_text("", None, [bill]) == "- [bill.pdf](http://c/f/2)"  # files alone
    assert streaming_text("Your order ships ") == "Your order ships …"
    assert streaming_text("") == "…"


def test_files_let_chat_input_be_empty_but_only_with_send_message() -> None:
    send = {"action": "sendMessage", "sessionId": UUID}
    assert parse_body({**send, "chatInput": ""}, LIMITS, with_files=True).chat_input == ""
    assert parse_body(send, LIMITS, with_files=True).chat_input == ""
    with pytest.raises(BadRequest) as empty:
        parse_body({**send, "chatInput": ""}, LIMITS)
    assert empty.value.code == "empty_content"
    with pytest.raises(BadRequest) as load:
        parse_body({"action": "loadPreviousSession", "sessionId": UUID}, LIMITS, with_files=True)
    assert (load.value.code, load.value.field) == ("invalid_form", "files")
