"""Wire models and request checks: strict shapes, named fields, bounded content and queries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chatd.core.messages import Message, MessageStatus
from chatd.core.wire import (
    CreateSessionRequest,
    Limits,
    PageQuery,
    SendMessageRequest,
    check_content,
    check_metadata,
    parse_model,
    parse_page_query,
)
from chatd.errors import BadRequest

LIMITS = Limits(max_message_length=1000, metadata_max_bytes=4096, metadata_max_depth=5)
HASH = "ab" * 32


def bad(code: str, field: str | None, fn: Any, *args: Any) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        fn(*args)
    assert (info.value.code, info.value.field) == (code, field)
    assert info.value.status == 400
    return info.value


def message(**fields: Any) -> dict[str, Any]:
    return {"sessionId": "8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77", "content": "hello", **fields}


# --- parse_model -------------------------------------------------------------------------------


def test_send_message_defaults() -> None:
    req = parse_model(SendMessageRequest, message())
    assert req == SendMessageRequest(
        sessionId="8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77", content="hello"
    )
    assert (req.messageType, req.metadata, req.clientMessageId) == ("text", None, None)


def test_send_message_full() -> None:
    body = message(messageType="quick_reply", metadata={"a": [1]}, clientMessageId="c-1:x.y_z")
    req = parse_model(SendMessageRequest, body)
    assert req.messageType == "quick_reply"
    assert req.metadata == {"a": [1]}
    assert req.clientMessageId == "c-1:x.y_z"


def test_empty_create_session_is_a_guest_request() -> None:
    assert parse_model(CreateSessionRequest, {}) == CreateSessionRequest()


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (SendMessageRequest, message(bogus=1), "bogus"),
        (SendMessageRequest, message(session_id="s"), "session_id"),
        (CreateSessionRequest, {"userid": "u"}, "userid"),
    ],
)
def test_unknown_field_is_named(model: Any, body: dict[str, Any], field: str) -> None:
    bad("unknown_field", field, parse_model, model, body)


@pytest.mark.parametrize("field", ["sessionId", "content"])
def test_missing_required_field_is_named(field: str) -> None:
    body = message()
    del body[field]
    bad("missing_field", field, parse_model, SendMessageRequest, body)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"content": 123}, "content"),
        ({"content": None}, "content"),
        ({"content": ["hello"]}, "content"),
        ({"sessionId": 5}, "sessionId"),
        ({"messageType": "image"}, "messageType"),
        ({"messageType": "TEXT"}, "messageType"),
        ({"messageType": 1}, "messageType"),
        ({"metadata": "x"}, "metadata"),
        ({"metadata": [1]}, "metadata"),
        ({"clientMessageId": ""}, "clientMessageId"),
        ({"clientMessageId": "a b"}, "clientMessageId"),
        ({"clientMessageId": "a/b"}, "clientMessageId"),
        ({"clientMessageId": "a\n"}, "clientMessageId"),
        ({"clientMessageId": "x" * 129}, "clientMessageId"),
        ({"clientMessageId": 7}, "clientMessageId"),
    ],
)
def test_wrong_values_are_not_coerced(changes: dict[str, Any], field: str) -> None:
    bad("invalid_field", field, parse_model, SendMessageRequest, message(**changes))


def test_client_message_id_of_128_characters_passes() -> None:
    req = parse_model(SendMessageRequest, message(clientMessageId="x" * 128))
    assert req.clientMessageId == "x" * 128


@pytest.mark.parametrize("body", [[], [message()], "hello", 1, None, True])
def test_non_object_body_is_invalid(body: Any) -> None:
    bad("invalid_body", None, parse_model, SendMessageRequest, body)


@pytest.mark.parametrize(
    "email", ["a@b.de", "first.last+tag@mail.example.co.uk", "x_y@sub-domain.example"]
)
def test_valid_guest_emails_pass(email: str) -> None:
    assert parse_model(CreateSessionRequest, {"guestEmail": email}).guestEmail == email


@pytest.mark.parametrize(
    "email",
    [
        "no-at",
        "a@",
        "@b.de",
        "a@b",
        "a b@c.de",
        "a@b c.de",
        "a@@b.de",
        "a@-b.de",
        "a@b.de\n",
        "\na@b.de",
        "",
        "a" * 65 + "@b.de",
        5,
    ],
)
def test_invalid_guest_emails_fail(email: Any) -> None:
    bad("invalid_field", "guestEmail", parse_model, CreateSessionRequest, {"guestEmail": email})


@pytest.mark.parametrize("user_hash", [HASH, HASH.upper(), "0" * 64])
def test_user_hash_of_64_hex_digits_passes(user_hash: str) -> None:
    body = {"userId": "u", "userHash": user_hash}
    assert parse_model(CreateSessionRequest, body).userHash == user_hash


@pytest.mark.parametrize("user_hash", ["ab" * 31, "ab" * 33, "g" * 64, HASH + "\n", " " + HASH, 0])
def test_user_hash_must_be_64_hex_digits(user_hash: Any) -> None:
    body = {"userId": "u", "userHash": user_hash}
    bad("invalid_field", "userHash", parse_model, CreateSessionRequest, body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"userId": ""}, "userId"),
        ({"userId": "u" * 256}, "userId"),
        ({"userId": 7}, "userId"),
        ({"identityToken": ""}, "identityToken"),
        ({"identityToken": "t" * 4097}, "identityToken"),
        ({"metadata": []}, "metadata"),
    ],
)
def test_create_session_field_bounds(body: dict[str, Any], field: str) -> None:
    bad("invalid_field", field, parse_model, CreateSessionRequest, body)


def test_parsed_requests_are_frozen() -> None:
    req = parse_model(SendMessageRequest, message())
    with pytest.raises(ValueError, match="frozen"):
        req.content = "changed"  # type: ignore[misc]


# --- check_content / check_metadata ------------------------------------------------------------


@pytest.mark.parametrize("content", ["", " ", "\n\t  \r\n", "\u3000"])
def test_empty_or_blank_content_is_refused(content: str) -> None:
    bad("empty_content", "content", check_content, content, LIMITS)


def test_content_up_to_the_limit_passes_and_one_more_is_refused() -> None:
    assert check_content("x" * 1000, LIMITS) == "x" * 1000
    assert check_content("😀" * 1000, LIMITS) == "😀" * 1000  # characters, not bytes
    bad("content_too_long", "content", check_content, "x" * 1001, LIMITS)


def test_metadata_size_is_counted_in_bytes_of_compact_json() -> None:
    limits = Limits(max_message_length=10, metadata_max_bytes=28, metadata_max_depth=5)
    # {"a":"éééééééééé"} is 18 characters but 28 bytes of UTF-8.
    exact = {"a": "é" * 10}
    assert check_metadata(exact, limits) is exact
    bad("metadata_too_large", "metadata", check_metadata, {"a": "é" * 10 + "x"}, limits)
    # Whitespace in the original body does not count: the compact form is measured.
    assert check_metadata({"a": "x" * 20}, limits) == {"a": "x" * 20}


def test_metadata_depth_is_bounded() -> None:
    limits = Limits(max_message_length=10, metadata_max_bytes=4096, metadata_max_depth=2)
    assert check_metadata({"a": {"b": 1}}, limits) == {"a": {"b": 1}}
    assert check_metadata({"a": [1, 2]}, limits) == {"a": [1, 2]}
    bad("metadata_too_deep", "metadata", check_metadata, {"a": {"b": {}}}, limits)
    bad("metadata_too_deep", "metadata", check_metadata, {"a": [[1]]}, limits)


def test_no_metadata_is_fine() -> None:
    assert check_metadata(None, LIMITS) is None
    assert check_metadata({}, LIMITS) == {}


# --- parse_page_query --------------------------------------------------------------------------


def test_page_query_defaults() -> None:
    assert parse_page_query({}) == PageQuery(page=1, limit=50, after_seq=None, wait=0)
    assert parse_page_query({}, default_limit=20).limit == 20


def test_page_query_values() -> None:
    args = {"page": "3", "limit": "100", "afterSeq": "0", "wait": "1"}
    assert parse_page_query(args) == PageQuery(page=3, limit=100, after_seq=0, wait=1)
    assert parse_page_query({"page": "100000", "limit": "1"}) == PageQuery(100000, 1, None, 0)
    assert parse_page_query({"afterSeq": str(2**62)}).after_seq == 2**62


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("page", "0"),
        ("page", "-1"),
        ("page", "100001"),
        ("page", "9" * 20),
        ("page", "abc"),
        ("page", "1.5"),
        ("page", "1e3"),
        ("page", " "),
        ("page", ""),
        ("page", "+1"),
        ("page", "0x10"),
        ("page", "\u0661"),  # ARABIC-INDIC DIGIT ONE: int() would take it, we do not
        ("limit", "0"),
        ("limit", "-5"),
        ("limit", "101"),
        ("limit", "1" * 20),
        ("limit", "ten"),
        ("afterSeq", "-1"),
        ("afterSeq", str(2**62 + 1)),
        ("afterSeq", "9" * 20),
        ("afterSeq", "1_000"),
        ("wait", "61"),
        ("wait", "-1"),
        ("wait", "1.5"),
    ],
)
def test_bad_page_query_values_name_the_parameter(name: str, raw: str) -> None:
    bad("invalid_query", name, parse_page_query, {name: raw})


def test_wait_needs_after_seq() -> None:
    bad("invalid_query", "wait", parse_page_query, {"wait": "5"})


@pytest.mark.parametrize("name", ["offset", "Page", "after_seq", ""])
def test_unknown_query_parameters_are_named(name: str) -> None:
    bad("unknown_field", name, parse_page_query, {"page": "1", name: "1"})


# --- Message.to_wire ---------------------------------------------------------------------------


def row(created_at: datetime) -> Message:
    return Message(
        id="m-1",
        session_id="8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77",
        sender_type="user",
        content="hi",
        message_type="text",
        metadata={"a": 1},
        status=MessageStatus.SENT,
        seq=7,
        created_at=created_at,
    )


def test_message_to_wire_has_exactly_the_wire_keys() -> None:
    wire = row(datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)).to_wire()
    assert wire == {
        "id": "m-1",
        "sessionId": "8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77",
        "senderType": "user",
        "content": "hi",
        "messageType": "text",
        "metadata": {"a": 1},
        "status": "sent",
        "seq": 7,
        "createdAt": "2024-05-06T07:08:09Z",
    }


def test_created_at_keeps_microseconds_and_ends_in_z() -> None:
    wire = row(datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)).to_wire()
    assert wire["createdAt"] == "2024-05-06T07:08:09.123456Z"
    assert datetime.fromisoformat(wire["createdAt"]) == datetime(
        2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC
    )
