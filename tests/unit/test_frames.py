"""WebSocket protocol logic: frame parsing and refusals, origins, typing throttle, frame limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatd.core.frames import (
    CloseCode,
    FrameError,
    FrameMeter,
    Join,
    Leave,
    Ping,
    SendFrame,
    Typing,
    TypingThrottle,
    encode_event,
    loopback_spellings,
    normalize_origin,
    origin_allowed,
    parse_frame,
)
from chatd.core.jsonbody import MAX_NESTING
from chatd.core.wire import MAX_SEQ, Limits

LIMITS = Limits(max_message_length=100, metadata_max_bytes=200, metadata_max_depth=3)
SID = "8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77"


def parse(frame: Any, joined: str | None = SID) -> Any:
    data = frame if isinstance(frame, str | bytes) else json.dumps(frame)
    return parse_frame(data, limits=LIMITS, joined=joined)


def refused(frame: Any, code: str, joined: str | None = SID) -> FrameError:
    with pytest.raises(FrameError) as info:
        parse(frame, joined)
    assert info.value.code == code
    return info.value


def send(**fields: Any) -> dict[str, Any]:
    return {"type": "send_message", "content": "hello", "clientMessageId": "c-1", **fields}


# --- FrameError and CloseCode ------------------------------------------------------------------


def test_frame_error_event_shape() -> None:
    assert FrameError("invalid_frame", "bad").event() == {
        "type": "error",
        "code": "invalid_frame",
        "message": "bad",
    }
    err = FrameError("empty_content", "content is empty", client_message_id="c-1")
    assert err.event() == {
        "type": "error",
        "code": "empty_content",
        "message": "content is empty",
        "clientMessageId": "c-1",
    }
    assert str(err) == "content is empty"


def test_close_codes_match_the_protocol() -> None:
    assert {c.name: int(c) for c in CloseCode} == {
        "NORMAL": 1000,
        "GOING_AWAY": 1001,
        "UNSUPPORTED_DATA": 1003,
        "INVALID_DATA": 1007,
        "TOO_BIG": 1009,
        "INTERNAL_ERROR": 1011,
        "JOIN_FAILED": 4001,
        "JOIN_REQUIRED": 4002,
        "JOIN_TIMEOUT": 4003,
        "SLOW_CONSUMER": 4008,
        "HEARTBEAT_TIMEOUT": 4009,
        "ABUSIVE": 4029,
    }


# --- join_chat ---------------------------------------------------------------------------------


def test_join_with_default_last_seq() -> None:
    frame = {"type": "join_chat", "sessionId": SID, "sessionToken": "tok"}
    assert parse(frame, joined=None) == Join(SID, "tok", 0)


def test_join_with_last_seq_bounds() -> None:
    base = {"type": "join_chat", "sessionId": SID, "sessionToken": "tok"}
    assert parse({**base, "lastSeq": 7}, joined=None) == Join(SID, "tok", 7)
    assert parse({**base, "lastSeq": MAX_SEQ}, joined=None).last_seq == MAX_SEQ


@pytest.mark.parametrize(
    ("last_seq", "fragment"),
    [
        (True, "join_chat.lastSeq"),
        (False, "join_chat.lastSeq"),
        (-1, "join_chat.lastSeq"),
        (MAX_SEQ + 1, "join_chat.lastSeq"),
        (1.0, "join_chat.lastSeq"),
        ("5", "join_chat.lastSeq"),
        (None, "join_chat.lastSeq"),
    ],
)
def test_join_bad_last_seq(last_seq: Any, fragment: str) -> None:
    frame = {"type": "join_chat", "sessionId": SID, "sessionToken": "t", "lastSeq": last_seq}
    assert fragment in refused(frame, "invalid_frame", joined=None).message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sessionToken": "t"}, "join_chat.sessionId is required"),
        ({"sessionId": SID}, "join_chat.sessionToken is required"),
        ({"sessionId": "", "sessionToken": "t"}, "join_chat.sessionId:"),
        ({"sessionId": "x" * 65, "sessionToken": "t"}, "join_chat.sessionId:"),
        ({"sessionId": SID, "sessionToken": ""}, "join_chat.sessionToken:"),
        ({"sessionId": SID, "sessionToken": "t" * 513}, "join_chat.sessionToken:"),
        ({"sessionId": 5, "sessionToken": "t"}, "join_chat.sessionId:"),
        ({"sessionId": SID, "sessionToken": "t", "extra": 1}, "unknown field join_chat.extra"),
    ],
)
def test_join_bad_fields(fields: dict[str, Any], message: str) -> None:
    err = refused({"type": "join_chat", **fields}, "invalid_frame", joined=None)
    assert err.message.startswith(message)
    assert err.client_message_id is None


def test_join_field_length_limits_are_inclusive_and_ids_are_lowercased() -> None:
    frame = {"type": "join_chat", "sessionId": SID.upper(), "sessionToken": "t" * 512}
    assert parse(frame, joined=None) == Join(SID, "t" * 512, 0)


def test_join_when_already_joined() -> None:
    frame = {"type": "join_chat", "sessionId": SID, "sessionToken": "tok"}
    assert refused(frame, "invalid_frame").message == "already joined"


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "ping"},
        {"type": "typing", "isTyping": True},
        {"type": "leave_chat"},
        send(),
        {"type": "no_such_type"},
    ],
)
def test_frames_before_join_require_join(frame: dict[str, Any]) -> None:
    err = refused(frame, "join_required", joined=None)
    assert err.message == "join_chat must be the first frame"


# --- send_message ------------------------------------------------------------------------------


def test_send_defaults() -> None:
    assert parse(send()) == SendFrame("hello", "text", None, "c-1")


def test_send_full() -> None:
    frame = send(
        messageType="quick_reply", metadata={"a": [1, {"b": 2}]}, clientMessageId="a.b:c_d-1"
    )
    assert parse(frame) == SendFrame("hello", "quick_reply", {"a": [1, {"b": 2}]}, "a.b:c_d-1")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"content": ""}, "empty_content"),
        ({"content": " \n\t "}, "empty_content"),
        ({"content": "x" * 101}, "content_too_long"),
        ({"metadata": {"k": "v" * 300}}, "metadata_too_large"),
        ({"metadata": {"a": {"b": {"c": {}}}}}, "metadata_too_deep"),
    ],
)
def test_send_content_and_metadata_limits_carry_the_client_message_id(
    fields: dict[str, Any], code: str
) -> None:
    err = refused(send(**fields), code)
    assert err.client_message_id == "c-1"
    assert err.event()["clientMessageId"] == "c-1"


def test_send_content_at_the_limit_is_accepted() -> None:
    assert parse(send(content="x" * 100)).content == "x" * 100
    assert parse(send(metadata={"a": {"b": {}}})).metadata == {"a": {"b": {}}}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"messageType": "image"}, "send_message.messageType:"),
        ({"metadata": [1]}, "send_message.metadata:"),
        ({"content": 5}, "send_message.content:"),
        ({"sessionId": SID}, "unknown field send_message.sessionId"),
    ],
)
def test_send_bad_fields_name_the_field_and_keep_the_client_message_id(
    fields: dict[str, Any], message: str
) -> None:
    err = refused(send(**fields), "invalid_frame")
    assert err.message.startswith(message)
    assert err.client_message_id == "c-1"


def test_send_without_content() -> None:
    frame = {"type": "send_message", "clientMessageId": "c-1"}
    err = refused(frame, "invalid_frame")
    assert err.message == "send_message.content is required"
    assert err.client_message_id == "c-1"


def test_send_requires_a_client_message_id() -> None:
    err = refused({"type": "send_message", "content": "hi"}, "invalid_frame")
    assert err.message == "send_message.clientMessageId is required"
    assert err.client_message_id is None


@pytest.mark.parametrize("client_id", ["", "x" * 129, "has space", "é", 5, None, ["c-1"]])
def test_send_bad_client_message_id_is_refused_and_not_echoed(client_id: Any) -> None:
    err = refused(send(clientMessageId=client_id), "invalid_frame")
    assert err.message.startswith("send_message.clientMessageId")
    assert err.client_message_id is None
    assert "clientMessageId" not in err.event()


def test_send_client_message_id_length_limit_is_inclusive() -> None:
    assert parse(send(clientMessageId="c" * 128)).client_message_id == "c" * 128


# --- typing, leave_chat, ping ------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False])
def test_typing(value: bool) -> None:
    assert parse({"type": "typing", "isTyping": value}) == Typing(value)
    assert parse({"type": "typing", "isTyping": value, "sessionId": SID}) == Typing(value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "typing.isTyping is required"),
        ({"isTyping": 1}, "typing.isTyping:"),
        ({"isTyping": "true"}, "typing.isTyping:"),
        ({"isTyping": True, "other": 1}, "unknown field typing.other"),
        ({"isTyping": True, "sessionId": ""}, "typing.sessionId:"),
    ],
)
def test_typing_bad_fields(fields: dict[str, Any], message: str) -> None:
    assert refused({"type": "typing", **fields}, "invalid_frame").message.startswith(message)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "typing", "isTyping": True, "sessionId": "3f2b8e4c-1a6d-4c9e-8f0b-7d5e2a1c9b30"},
        {"type": "leave_chat", "sessionId": "3f2b8e4c-1a6d-4c9e-8f0b-7d5e2a1c9b30"},
    ],
)
def test_session_id_must_be_the_joined_one(frame: dict[str, Any]) -> None:
    assert refused(frame, "invalid_frame").message == "sessionId is not the joined session"


def test_leave_and_ping() -> None:
    assert parse({"type": "leave_chat"}) == Leave()
    assert parse({"type": "leave_chat", "sessionId": SID}) == Leave()
    assert parse({"type": "ping"}) == Ping()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"type": "ping", "ts": 1}, "unknown field ping.ts"),
        ({"type": "leave_chat", "reason": "x"}, "unknown field leave_chat.reason"),
    ],
)
def test_unknown_fields_on_simple_frames(frame: dict[str, Any], message: str) -> None:
    assert refused(frame, "invalid_frame").message == message


# --- frame shape -------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", ["[]", "1", '"ping"', "null", "true", '[{"type": "ping"}]'])
def test_non_object_frames(frame: str) -> None:
    assert refused(frame, "invalid_frame").message == "a frame must be a JSON object"


@pytest.mark.parametrize("joined", [None, SID])
def test_missing_or_non_string_type(joined: str | None) -> None:
    assert refused({}, "invalid_frame", joined).message == "type is required"
    assert refused({"isTyping": True}, "invalid_frame", joined).message == "type is required"
    for kind in (None, 1, ["ping"], {"a": 1}):
        err = refused({"type": kind}, "invalid_frame", joined)
        assert err.message == "type must be a string"


@pytest.mark.parametrize("kind", ["no_such_type", "PING", "Join_Chat", "", "x" * 10_000])
def test_unknown_type_after_join(kind: str) -> None:
    err = refused({"type": kind}, "invalid_frame")
    assert err.message.startswith("type must be one of join_chat, send_message")
    assert len(err.message) < 200  # the client's value is not echoed


def test_binary_data_is_refused() -> None:
    err = refused(b'{"type": "ping"}', "invalid_frame")
    assert "binary" in err.message


# --- invalid JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "   ",
        "{",
        "{'type': 'ping'}",
        '{"type": "ping"} x',
        '{"type": "ping",}',
        "undefined",
    ],
)
def test_malformed_json(frame: str) -> None:
    refused(frame, "invalid_json")


@pytest.mark.parametrize(
    "frame",
    [
        "NaN",
        '{"type": "send_message", "content": "x", "clientMessageId": "c", "metadata": {"a": NaN}}',
        '{"type": "ping", "x": Infinity}',
        '{"type": "ping", "x": -Infinity}',
        '{"type": "ping", "x": 1e999}',
    ],
)
def test_non_finite_numbers(frame: str) -> None:
    refused(frame, "invalid_json")


@pytest.mark.parametrize(
    "frame",
    [
        '{"type": "send_message", "content": "\\ud800", "clientMessageId": "c"}',
        '{"type": "send_message", "content": "\\udfff x", "clientMessageId": "c"}',
        '{"type": "send_message", "content": "a\\u0000b", "clientMessageId": "c"}',
        '{"type": "ping", "\\u0000": 1}',
    ],
)
def test_escaped_lone_surrogates_and_nul(frame: str) -> None:
    # Well-formed JSON with text that cannot be stored: the REST API's code, and a send keeps
    # its clientMessageId so the client can match the refusal to its pending message.
    err = refused(frame, "invalid_characters")
    assert err.client_message_id == ("c" if "send_message" in frame else None)


def test_raw_lone_surrogate_in_the_text() -> None:
    # Not possible from a valid UTF-8 frame, but a str can hold one: refused, not a crash.
    refused('{"type": "send_message", "content": "\ud800", "clientMessageId": "c"}', "invalid_json")


def test_raw_nul_outside_a_string() -> None:
    refused('{"type": "ping"}\x00', "invalid_json")


def test_escaped_surrogate_pair_is_fine() -> None:
    frame = '{"type": "send_message", "content": "\\ud83d\\ude00", "clientMessageId": "c"}'
    assert parse(frame).content == "\U0001f600"


def test_nesting_beyond_the_limit() -> None:
    deep = "[" * (MAX_NESTING + 1) + "1" + "]" * (MAX_NESTING + 1)
    err = refused(f'{{"type": "ping", "x": {deep}}}', "invalid_json")
    assert "nested" in err.message


def test_nesting_far_beyond_the_limit_does_not_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    refused(deep, "invalid_json")
    refused('{"type": "ping", "x": ' + "{" * 100_000, "invalid_json")


def test_nesting_within_the_json_limit_reaches_the_metadata_check() -> None:
    metadata = "[" * 10 + "]" * 10
    frame = f'{{"type": "send_message", "content": "x", "clientMessageId": "c-9", "metadata": {{"a": {metadata}}}}}'
    err = refused(frame, "metadata_too_deep")
    assert err.client_message_id == "c-9"


# --- origins -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("HTTP://LocalHost:8000", "http://localhost:8000"),
        ("http://shop.example", "http://shop.example"),
        ("http://shop.example:80", "http://shop.example"),
        ("https://shop.example:443", "https://shop.example"),
        ("https://shop.example:80", "https://shop.example:80"),
        ("http://shop.example:443", "http://shop.example:443"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("http://[0:0:0:0:0:0:0:1]", "http://[::1]"),
        ("https://[2001:DB8::1]:443", "https://[2001:db8::1]"),
        ("http://shop.example:08000", "http://shop.example:8000"),
        ("http://xn--bcher-kva.example", "http://xn--bcher-kva.example"),
    ],
)
def test_normalize_origin(value: str, expected: str) -> None:
    assert normalize_origin(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "null",
        "NULL",
        "127.0.0.1:8000",
        "//127.0.0.1:8000",
        "ftp://shop.example",
        "ws://shop.example",
        "file://",
        "http://",
        "http://:8000",
        "http://.",
        "http://shop.example/",
        "http://shop.example/path",
        "http://shop.example?q=1",
        "http://shop.example#f",
        "http://user@shop.example",
        "http://user:pw@shop.example",
        "http://shop.example:",
        "http://shop.example:0",
        "http://shop.example:65536",
        "http://shop.example:80001",
        "http://shop.example:-1",
        "http://shop.example:8000:9000",
        " http://shop.example",
        "http://shop.example ",
        "http://shop.example\n",
        "http://shop example",
        "http://shöp.example",
        "http://shop.example%2e",
        "http://[::1",
        "http://[not:an:ip]",
        "http://[::1%eth0]",
        "http://::1",
    ],
)
def test_normalize_origin_refuses(value: str) -> None:
    assert normalize_origin(value) is None


ALLOWED = ["http://127.0.0.1:8000", "https://shop.example"]


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:8000",
        "HTTP://127.0.0.1:8000",
        "https://shop.example",
        "HTTPS://SHOP.EXAMPLE",
        "https://Shop.Example:443",
    ],
)
def test_origin_allowed(origin: str) -> None:
    assert origin_allowed(origin, ALLOWED)


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "",
        "null",
        "http://127.0.0.1:8000.evil.com",
        "http://evil.com/http://127.0.0.1:8000",
        "http://127.0.0.1:80001",
        "http://127.0.0.1:800",
        "http://127.0.0.1",
        "https://127.0.0.1:8000",
        "http://shop.example",
        "http://127.0.0.1:8000@evil.com",
        "http://evil.com@127.0.0.1:8000",
        "http://127.0.0.1.:8000",
        "https://shop.example.",
        "https://shop.example.evil.com",
        "https://evilshop.example",
        "https://sub.shop.example",
        "http://127.0.0.1:8000/",
        "http://localhost:8000",
        "http://127.0.0.2:8000",
        "malformed",
    ],
)
def test_origin_lookalikes_are_refused(origin: str | None) -> None:
    assert not origin_allowed(origin, ALLOWED)


def test_allow_list_entries_are_normalized_too() -> None:
    assert origin_allowed("https://shop.example", ["HTTPS://Shop.Example:443"])
    assert origin_allowed("http://[::1]:8000", ["http://[0::1]:8000"])
    assert not origin_allowed("https://shop.example", ["https://shop.example/path", "null"])
    assert not origin_allowed("https://shop.example", [])


@pytest.mark.parametrize(
    ("origin", "spellings"),
    [
        (
            "http://127.0.0.1:8000",
            ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"),
        ),
        (
            "http://LOCALHOST:8000",
            ("http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"),
        ),
        ("https://[0::1]", ("https://[::1]", "https://localhost", "https://127.0.0.1")),
        (
            "http://127.0.0.2:80",
            ("http://127.0.0.2", "http://localhost", "http://127.0.0.1", "http://[::1]"),
        ),
        ("http://0.0.0.0:8000", ("http://0.0.0.0:8000",)),  # every interface: not loopback
        ("http://192.168.1.5:8000", ("http://192.168.1.5:8000",)),
        ("https://localhost.evil.example", ("https://localhost.evil.example",)),
        ("http://127.0.0.1:8000/", ()),
    ],
)
def test_loopback_spellings(origin: str, spellings: tuple[str, ...]) -> None:
    assert loopback_spellings(origin) == spellings


# --- TypingThrottle ----------------------------------------------------------------------------


def test_typing_throttle_relays_changes_at_once() -> None:
    throttle = TypingThrottle(interval=1.0)
    assert throttle.allow(True, 0.0)
    assert throttle.allow(False, 0.1)
    assert throttle.allow(True, 0.2)
    assert throttle.allow(False, 0.2)


def test_typing_throttle_limits_repeats_of_the_same_value() -> None:
    throttle = TypingThrottle(interval=1.0)
    assert throttle.allow(True, 10.0)
    assert not throttle.allow(True, 10.5)
    assert not throttle.allow(True, 10.999)
    assert throttle.allow(True, 11.0)  # one interval after the last relay
    assert not throttle.allow(True, 11.5)  # measured from 11.0, not from the refused 10.999
    assert throttle.allow(True, 12.0)


def test_typing_throttle_repeat_after_a_change_is_measured_from_the_change() -> None:
    throttle = TypingThrottle(interval=1.0)
    assert throttle.allow(True, 0.0)
    assert throttle.allow(False, 0.5)
    assert not throttle.allow(False, 1.25)
    assert throttle.allow(False, 1.5)


def test_typing_throttle_first_value_is_relayed() -> None:
    assert TypingThrottle().allow(False, 0.0)
    assert TypingThrottle(interval=2.0).allow(True, -5.0)


# --- FrameMeter --------------------------------------------------------------------------------


def test_meter_admits_per_second_frames_in_any_second() -> None:
    meter = FrameMeter(per_second=3)
    assert [meter.admit(t) for t in (0.0, 0.1, 0.2)] == [None, None, None]
    assert meter.admit(0.5) == pytest.approx(0.5)  # the frame at 0.0 leaves the window at 1.0
    assert meter.admit(0.9) == pytest.approx(0.1)
    assert meter.admit(1.0) is None
    assert meter.admit(1.05) == pytest.approx(0.05)
    assert meter.admit(1.1) is None
    assert not meter.abusive


def test_meter_rate_limited_frames_do_not_use_up_the_window() -> None:
    meter = FrameMeter(per_second=1)
    assert meter.admit(0.0) is None
    for t in (0.2, 0.4, 0.6, 0.8):
        assert meter.admit(t) is not None
    assert meter.admit(1.0) is None


def test_meter_fractional_rate_rounds_down_but_never_to_zero() -> None:
    meter = FrameMeter(per_second=2.5)
    assert [meter.admit(0.0) for _ in range(3)] == [None, None, pytest.approx(1.0)]
    slow = FrameMeter(per_second=0.5)
    assert slow.admit(0.0) is None
    assert slow.admit(0.5) == pytest.approx(0.5)


def test_meter_refused_in_a_row_becomes_abusive() -> None:
    meter = FrameMeter(per_second=100, max_refused_in_row=3)
    meter.refused()
    meter.refused()
    assert not meter.abusive
    meter.accepted()  # a good frame resets the count
    meter.refused()
    meter.refused()
    assert not meter.abusive
    meter.refused()
    assert meter.abusive


def test_meter_default_max_refused_in_row_is_ten() -> None:
    meter = FrameMeter(per_second=10)
    for _ in range(9):
        meter.refused()
    assert not meter.abusive
    meter.refused()
    assert meter.abusive


def test_meter_flood_beyond_five_times_the_rate_is_abusive() -> None:
    meter = FrameMeter(per_second=2, max_refused_in_row=1000)
    now = 0.0
    for i in range(10):  # exactly 5x within 1 s: rate limited, not yet abusive
        now = i * 0.05
        meter.admit(now)
    assert not meter.abusive
    meter.admit(now + 0.01)
    assert meter.abusive
    meter.accepted()
    assert meter.abusive  # sticky: the connection is closed with 4029


def test_meter_steady_traffic_at_the_limit_is_never_abusive() -> None:
    meter = FrameMeter(per_second=8)
    for i in range(1000):
        assert meter.admit(i * 0.125) is None  # exact binary fractions: no float noise
        meter.accepted()
    assert not meter.abusive


def test_meter_spread_out_bursts_at_five_times_the_rate_are_not_abusive() -> None:
    meter = FrameMeter(per_second=2, max_refused_in_row=1000)
    for burst in range(5):
        for i in range(10):  # 5x the rate within 1 s, then a quiet second
            meter.admit(burst * 2.0 + i * 0.0625)
    assert not meter.abusive


# --- encode_event ------------------------------------------------------------------------------


def test_encode_event_is_compact_utf8_json() -> None:
    event = {"type": "typing", "sessionId": SID, "isTyping": True, "text": "é 😀"}
    text = encode_event(event)
    assert text == ('{"type":"typing","sessionId":"' + SID + '","isTyping":true,"text":"é 😀"}')
    assert json.loads(text) == event


def test_encode_event_refuses_non_finite_numbers() -> None:
    with pytest.raises(ValueError, match="JSON"):
        encode_event({"type": "x", "v": float("nan")})
