"""n8n's answers and callbacks: every accepted form, acknowledgements, refusals, idempotency keys."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import pytest

from chatd.core.replies import (
    MAX_METADATA_BYTES,
    BotReply,
    Callback,
    InvalidReply,
    parse_callback,
    parse_reply_body,
    reply_key,
)
from chatd.errors import BadRequest

S1 = "8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77"  # ids as chatd makes them
M1 = "90041c3e-5b7a-4e0f-8d2c-6a9b3e1f0d42"
M2 = "5e7a1d2c-8b3f-4e6a-9c0d-1f2e3a4b5c6d"


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


Mode = Literal["webhook", "chat_trigger"]


def sync(value: Any, *, mode: Mode = "webhook", max_content: int = 4000) -> BotReply | None:
    raw = value if isinstance(value, bytes) else body(value)
    return parse_reply_body(raw, mode=mode, max_content=max_content)


def invalid(value: Any, *, mode: Mode = "webhook", max_content: int = 4000) -> InvalidReply:
    with pytest.raises(InvalidReply) as info:
        sync(value, mode=mode, max_content=max_content)
    assert info.value.reason
    return info.value


def obj(**fields: Any) -> dict[str, Any]:
    """A guide-form reply whose response object has content "x" plus `fields`."""
    return {"response": {"content": "x", **fields}}


LINK = {"type": "link", "url": "https://a.example"}
REDIRECT = {"type": "redirect", "payload": {"url": "javascript:alert(1)"}}


GUIDE_REPLY = {
    "sessionId": S1,
    "response": {
        "content": "Which size?",
        "type": "quick_reply",
        "quickReplies": ["S", "M", "L"],
        "attachments": [{"type": "image", "url": "https://shop.example/s.png", "title": "Chart"}],
    },
    "metadata": {"intent": "product_inquiry", "confidence": 0.9},
    "actions": [{"type": "redirect", "payload": {"url": "https://shop.example/size"}}],
}


# --- acknowledgements --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"  \r\n\t ",
        b"{}",
        b"[]",
        b'{"message": "Workflow was started"}',
        b'{"ok": true}',
        b'{"success": true}',
        b'{"executionStarted": true, "executionId": "42"}',
        b'[{"ok": true}]',
        b'{"text": "only chat_trigger mode reads text"}',
    ],
)
def test_acknowledgements_without_a_reply(raw: bytes) -> None:
    assert sync(raw) is None


def test_chat_trigger_mode_still_acknowledges_bare_objects() -> None:
    assert sync(b'{"message": "Workflow was started"}', mode="chat_trigger") is None


# --- accepted replies --------------------------------------------------------------------------


def test_guide_n8n_webhook_response_in_full() -> None:
    assert sync(GUIDE_REPLY) == BotReply(
        content="Which size?",
        message_type="quick_reply",
        metadata={
            "quickReplies": ["S", "M", "L"],
            "attachments": [
                {"type": "image", "url": "https://shop.example/s.png", "title": "Chart"}
            ],
            "actions": [{"type": "redirect", "payload": {"url": "https://shop.example/size"}}],
            "n8n": {"intent": "product_inquiry", "confidence": 0.9},
        },
    )


def test_minimal_object_reply_is_text_with_no_metadata() -> None:
    assert sync({"response": {"content": "Hello"}}) == BotReply("Hello", "text", {})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (obj(quickReplies=["a"]), "quick_reply"),
        (obj(attachments=[LINK]), "rich_content"),
        (obj(quickReplies=["a"], attachments=[LINK]), "quick_reply"),
        (obj(quickReplies=[]), "text"),
        (obj(type="text", quickReplies=["a"]), "text"),
    ],
)
def test_reply_type_defaults_from_what_is_given(value: dict[str, Any], expected: str) -> None:
    reply = sync(value)
    assert reply is not None
    assert reply.message_type == expected


def test_empty_lists_are_not_stored() -> None:
    assert sync(obj(quickReplies=[], attachments=[])) == BotReply("x", "text", {})


def test_attachment_title_only_when_given() -> None:
    reply = sync(obj(attachments=[LINK]))
    assert reply is not None
    assert reply.metadata == {"attachments": [LINK]}


def test_guide_webhook_request_form_with_plain_string() -> None:
    value = {
        "sessionId": S1,
        "response": "Hi there",
        "responseType": "rich_content",
        "metadata": {"k": 1},
    }
    assert sync(value) == BotReply("Hi there", "rich_content", {"n8n": {"k": 1}})
    assert sync({"response": "Hi"}) == BotReply("Hi", "text", {})


@pytest.mark.parametrize("mode", ["webhook", "chat_trigger"])
def test_ai_agent_output_form(mode: Mode) -> None:
    assert sync({"output": "From the agent"}, mode=mode) == BotReply("From the agent", "text", {})


def test_chat_trigger_text_form() -> None:
    assert sync({"text": "Hi"}, mode="chat_trigger") == BotReply("Hi", "text", {})


def test_response_wins_over_output() -> None:
    reply = sync({"response": {"content": "guide"}, "output": "agent"})
    assert reply is not None
    assert reply.content == "guide"


def test_array_stands_for_its_first_item() -> None:
    assert sync([{"output": "first"}, {"output": "second"}]) == BotReply("first", "text", {})
    assert sync([GUIDE_REPLY]) == sync(GUIDE_REPLY)


def test_unknown_keys_are_tolerated_outside_and_inside_response() -> None:
    value = {**obj(buttons=[1], attachments=[{**LINK, "alt": "y"}]), "executionId": "9"}
    reply = sync(value)
    assert reply is not None
    assert reply.metadata == {"attachments": [LINK]}


def test_type_given_at_top_level_applies_to_an_object_response() -> None:
    reply = sync({"response": {"content": "x"}, "responseType": "rich_content"})
    assert reply is not None
    assert reply.message_type == "rich_content"


def test_content_is_kept_verbatim_and_limits_are_inclusive() -> None:
    assert sync({"output": " hi\n"}) == BotReply(" hi\n", "text", {})
    assert sync({"output": "é" * 10}, max_content=10) is not None
    assert sync(obj(quickReplies=["q" * 200] * 10, attachments=[LINK] * 10)) is not None


# --- refusals ----------------------------------------------------------------------------------


def test_large_html_body_is_refused_fast() -> None:
    page = b"<!DOCTYPE html><html><body>" + b"x" * (10 * 1024 * 1024) + b"</body></html>"
    started = time.perf_counter()
    error = invalid(page)
    assert time.perf_counter() - started < 0.5
    assert "not a JSON" in error.reason


@pytest.mark.parametrize(
    "raw",
    [
        b"Workflow was started",
        b'"just a string"',
        b"42",
        b"true",
        b"null",
        b"{not json",
        b'{"output": "x"',
        b"\xff\xfe{}",
        b'{"output": NaN}',
        b"[[[[" * 100 + b"]]]]" * 100,
        b'["text"]',
        b"[null]",
    ],
)
def test_not_json_or_not_an_object(raw: bytes) -> None:
    invalid(raw)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"response": None}, "response"),
        ({"response": 5}, "response"),
        ({"response": []}, "response"),
        ({"response": {}}, "response.content"),
        ({"response": {"content": 5}}, "response.content"),
        ({"response": {"content": ""}}, "response.content"),
        ({"response": {"content": " \n "}}, "response.content"),
        ({"response": ""}, "response"),
        (obj(type="video"), "response.type"),
        ({"response": "x", "responseType": "html"}, "responseType"),
        (obj(quickReplies="a,b"), "response.quickReplies"),
        (obj(quickReplies=[1]), "response.quickReplies.0"),
        (obj(quickReplies=[""]), "response.quickReplies.0"),
        (obj(quickReplies=["  "]), "response.quickReplies.0"),
        (obj(quickReplies=["q" * 201]), "response.quickReplies.0"),
        (obj(quickReplies=["q"] * 11), "response.quickReplies"),
        (obj(attachments=[{"type": "link"}]), "response.attachments.0.url"),
        (obj(attachments=[{**LINK, "type": "gif"}]), "response.attachments.0.type"),
        (obj(attachments=[{**LINK, "title": 5}]), "response.attachments.0.title"),
        (obj(attachments=[LINK] * 11), "response.attachments"),
        ({"response": "x", "metadata": []}, "metadata"),
        ({"response": "x", "actions": [{"type": "explode"}]}, "actions.0.type"),
        ({"response": "x", "actions": [REDIRECT]}, "actions.0.payload"),
        ({"response": "x", "actions": [{**REDIRECT, "payload": {"url": 7}}]}, "actions.0.payload"),
        ({"response": "x", "actions": [{"type": "trigger_event"}] * 11}, "actions"),
        ({"output": 7}, "output"),
        ({"output": ""}, "output"),
        ({"output": None}, "output"),
    ],
)
def test_wrong_shapes_name_the_field(value: Any, field: str) -> None:
    assert invalid(value).field == field


def test_chat_trigger_text_must_be_a_string() -> None:
    assert invalid({"text": ["x"]}, mode="chat_trigger").field == "text"


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox",
        "file:///etc/passwd",
        "ftp://a.example/x",
        "//a.example/x",
        "/relative/path",
        "https://",
        "https://a.example/x y",
        "https://a.example/\nx",
        " https://a.example/",
        "https://a.example/" + "x" * 2048,
    ],
)
def test_unsafe_attachment_urls_are_refused(url: str) -> None:
    value = {"response": {"content": "x", "attachments": [{"type": "link", "url": url}]}}
    assert invalid(value).field == "response.attachments.0.url"


def test_content_longer_than_the_limit() -> None:
    assert "longer than 10" in invalid({"output": "x" * 11}, max_content=10).reason
    assert invalid({"response": {"content": "x" * 4001}}).field == "response.content"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"output": "a\\u0000b"}',
        b'{"output": "\\ud800"}',
        b'{"response": {"content": "ok", "quickReplies": ["\\udfff"]}}',
        b'{"response": "ok", "metadata": {"k": "\\u0000"}}',
        b'{"response": "ok", "ignored\\u0000key": 1}',
    ],
)
def test_nul_and_lone_surrogates_anywhere(raw: bytes) -> None:
    invalid(raw)


def test_huge_metadata_is_refused() -> None:
    value = {"response": "x", "metadata": {"blob": "x" * MAX_METADATA_BYTES}}
    assert invalid(value).field == "metadata"


# --- callbacks ---------------------------------------------------------------------------------


def test_callback_in_the_guide_form() -> None:
    value = {**GUIDE_REPLY, "replyTo": M1, "signature": "legacy, ignored"}
    expected = sync(GUIDE_REPLY)
    assert expected is not None
    assert parse_callback(value) == Callback(S1, M1, expected)


def test_callback_with_a_plain_string_and_no_reply_to() -> None:
    value = {"sessionId": S1, "response": "Thanks!", "responseType": "text", "replyTo": None}
    assert parse_callback(value) == Callback(S1, None, BotReply("Thanks!", "text", {}))


def bad_callback(value: Any, **kwargs: Any) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        parse_callback(value, **kwargs)
    assert info.value.code == "invalid_callback"
    assert info.value.status == 400
    return info.value


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ([], None),
        ("text", None),
        ({"response": "x"}, "sessionId"),
        ({"sessionId": "", "response": "x"}, "sessionId"),
        ({"sessionId": 5, "response": "x"}, "sessionId"),
        ({"sessionId": "s" * 65, "response": "x"}, "sessionId"),
        ({"sessionId": S1}, "response"),
        ({"sessionId": S1, "response": None}, "response"),
        ({"sessionId": S1, "response": "x", "replyTo": ""}, "replyTo"),
        ({"sessionId": S1, "response": "x", "replyTo": 3}, "replyTo"),
        ({"sessionId": S1, "response": "x", "output": "y"}, "output"),
        ({"sessionId": S1, "response": {"content": ""}}, "response.content"),
        ({"sessionId": S1, "response": "a\x00b"}, "response"),
        ({"sessionId": S1, "response": "ok", "metadata": {"k": "\ud800"}}, "metadata.k"),
        (
            {"sessionId": S1, **obj(attachments=[{**LINK, "url": "data:,x"}])},
            "response.attachments.0.url",
        ),
    ],
)
def test_invalid_callbacks_name_the_field(value: Any, field: str | None) -> None:
    assert bad_callback(value).field == field


def test_callback_content_limit() -> None:
    bad_callback({"sessionId": S1, "response": "x" * 11}, max_content=10)


def test_callback_tolerates_unknown_keys_inside_response() -> None:
    value = {"sessionId": S1, "response": {"content": "x", "extra": True}}
    assert parse_callback(value).reply == BotReply("x", "text", {})


# --- reply_key ---------------------------------------------------------------------------------


def test_same_reply_same_key_from_sync_or_callback() -> None:
    from_sync = sync(GUIDE_REPLY)
    assert from_sync is not None
    from_callback = parse_callback({**GUIDE_REPLY, "replyTo": M1}).reply
    assert reply_key(M1, from_sync) == reply_key(M1, from_callback)


def test_key_ignores_metadata_key_order_and_is_hex_sha256() -> None:
    one = BotReply("x", "text", {"n8n": {"a": 1, "b": 2}})
    two = BotReply("x", "text", {"n8n": {"b": 2, "a": 1}})
    assert reply_key(M1, one) == reply_key(M1, two)
    assert len(reply_key(M1, one)) == 64
    int(reply_key(M1, one), 16)


@pytest.mark.parametrize(
    ("reply_to", "reply"),
    [
        (M2, BotReply("x", "text", {})),
        (None, BotReply("x", "text", {})),
        (M1, BotReply("y", "text", {})),
        (M1, BotReply("x", "quick_reply", {})),
        (M1, BotReply("x", "text", {"quickReplies": ["a"]})),
    ],
)
def test_any_difference_changes_the_key(reply_to: str | None, reply: BotReply) -> None:
    assert reply_key(reply_to, reply) != reply_key(M1, BotReply("x", "text", {}))


def test_key_framing_is_unambiguous() -> None:
    one, two = BotReply("c", "text", {}), BotReply("b.c", "text", {})
    assert reply_key("a.b", one) != reply_key("a", two)
