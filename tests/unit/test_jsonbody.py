"""Untrusted JSON: strict syntax, bounded nesting, and only strings PostgreSQL can store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatd.core.jsonbody import MAX_NESTING, nesting_depth, parse_json
from chatd.errors import BadRequest


def rejected(raw: bytes, code: str) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        parse_json(raw)
    assert info.value.code == code
    assert info.value.status == 400
    return info.value


@pytest.mark.parametrize(
    "raw", [b"\xff", b'{"a": "\xc3"}', b'{"a": "\xed\xa0\x80"}', b"\xfe\xff{}"]
)
def test_invalid_utf8_is_rejected(raw: bytes) -> None:
    rejected(raw, "invalid_json")


@pytest.mark.parametrize("raw", [b"", b"   ", b"\n\t\r "])
def test_empty_body_is_rejected(raw: bytes) -> None:
    rejected(raw, "invalid_json")


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"a": 1,}', b"{'a': 1}", b'{"a": 1} x', b"[1 2]", b'{"a"}', b"undefined", b'"\x00"'],
)
def test_malformed_json_is_rejected(raw: bytes) -> None:
    err = rejected(raw, "invalid_json")
    assert "malformed JSON" in err.message


@pytest.mark.parametrize(
    "raw",
    [b"NaN", b'{"a": NaN}', b"[Infinity]", b'{"a": -Infinity}', b"[1e999]", b'{"a": -1e400}'],
)
def test_non_finite_numbers_are_rejected(raw: bytes) -> None:
    rejected(raw, "invalid_json")


def test_integer_literal_beyond_pythons_digit_limit_is_a_bad_request() -> None:
    rejected(b'{"a": ' + b"9" * 5000 + b"}", "invalid_json")


def test_large_but_ordinary_numbers_are_kept() -> None:
    big = 10**40
    assert parse_json(f'{{"a": {big}, "b": 1.5e300, "c": -0.0}}'.encode()) == {
        "a": big,
        "b": 1.5e300,
        "c": -0.0,
    }


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_pathological_nesting_is_too_deep_not_a_recursion_error(opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    rejected(opener * 100_000 + b"1" + closer * 100_000, "too_deep")


def nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def test_nesting_up_to_the_limit_is_accepted() -> None:
    # A value at depth d sits inside d containers; the limit counts the containers.
    value = parse_json(nested(MAX_NESTING + 1))
    assert nesting_depth(value) == MAX_NESTING + 1


def test_nesting_beyond_the_limit_is_too_deep() -> None:
    assert MAX_NESTING == 32
    err = rejected(nested(MAX_NESTING + 2), "too_deep")
    assert err.field is not None
    assert err.field.startswith("[0]")


def test_nul_in_a_value_names_the_field() -> None:
    err = rejected(b'{"metadata": {"a": "x\\u0000y"}}', "invalid_characters")
    assert err.field == "metadata.a"


def test_nul_in_a_list_item_names_the_index() -> None:
    err = rejected(b'{"tags": ["ok", "\\u0000"]}', "invalid_characters")
    assert err.field == "tags[1]"


def test_nul_in_a_key_names_where_it_sits_without_echoing_it() -> None:
    err = rejected(b'{"metadata": {"a\\u0000": 1}}', "invalid_characters")
    assert err.field == "metadata"
    assert "\x00" not in err.message


@pytest.mark.parametrize(
    "raw",
    [
        b'{"content": "\\ud800"}',
        b'{"content": "x\\udfff"}',
        b'{"content": "\\ude00\\ud83d"}',  # a pair in the wrong order is two lone halves
        b'{"metadata": {"\\ud800": 1}}',
    ],
)
def test_lone_surrogate_escapes_are_rejected(raw: bytes) -> None:
    err = rejected(raw, "invalid_characters")
    assert err.field in {"content", "metadata"}


def test_escaped_surrogate_pairs_and_unicode_are_accepted() -> None:
    raw = '{"content": "\\ud83d\\ude00 héllo 日本語 🎉", "k€y": ["ß"]}'.encode()
    assert parse_json(raw) == {"content": "😀 héllo 日本語 🎉", "k€y": ["ß"]}


@pytest.mark.parametrize("value", [{"a": 1}, [1, "x", None, True], "text", 3, None, {}])
def test_any_valid_json_value_parses(value: Any) -> None:
    assert parse_json(json.dumps(value).encode()) == value


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        (1, 0),
        ("s", 0),
        (None, 0),
        ({}, 1),
        ([], 1),
        ({"a": 1}, 1),
        ({"a": {}}, 2),
        ([[], [[]]], 3),
        ({"a": [1, {"b": [2]}], "c": {}}, 4),
    ],
)
def test_nesting_depth(value: Any, depth: int) -> None:
    assert nesting_depth(value) == depth
