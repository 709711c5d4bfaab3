"""Session tokens: entropy, stored hash, and the Authorization header parser."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid

import pytest

from chatd.core.tokens import bearer_token, new_id, new_session_token, token_hash


def test_session_token_carries_at_least_128_random_bits() -> None:
    token = new_session_token()
    assert len(token) >= 43
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert len(raw) * 8 >= 128


def test_session_tokens_do_not_repeat() -> None:
    tokens = {new_session_token() for _ in range(2000)}
    assert len(tokens) == 2000


def test_new_id_is_a_fresh_uuid4() -> None:
    ids = {new_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_token_hash_is_sha256_and_deterministic() -> None:
    digest = token_hash("abc")
    assert digest == hashlib.sha256(b"abc").digest()
    assert len(digest) == 32
    assert token_hash("abc") == digest
    assert token_hash("abd") != digest


def test_token_hash_accepts_any_str_a_header_can_carry() -> None:
    assert len(token_hash("\ud800")) == 32


@pytest.mark.parametrize(
    "header", ["Bearer abc", "bearer abc", "BEARER abc", "BeArEr abc", "  Bearer   abc  "]
)
def test_bearer_scheme_is_case_insensitive(header: str) -> None:
    assert bearer_token(header) == "abc"


def test_bearer_token_up_to_512_characters() -> None:
    assert bearer_token("Bearer " + "a" * 512) == "a" * 512
    assert bearer_token("Bearer " + "a" * 513) is None


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Basic abc",
        "Token abc",
        "abc",
        "Bearerabc",
    ],
)
def test_bearer_rejects_missing_empty_and_other_schemes(header: str | None) -> None:
    assert bearer_token(header) is None
