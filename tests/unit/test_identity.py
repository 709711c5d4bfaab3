"""Identity proof: guests, userHash (HMAC) and identityToken (HS256 JWT) against a given clock."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import jwt
import pytest

from chatd.core.identity import CLOCK_LEEWAY_SECONDS, Identity, prove_identity, user_hash
from chatd.errors import BadRequest, Unauthorized

# 64 bytes, so PyJWT has no short-key warning for HS256 or HS512.
SECRET = "s" * 64
NOW = 1_700_000_000.0


def prove(
    *,
    user_id: str | None = None,
    user_hash_hex: str | None = None,
    identity_token: str | None = None,
    secret: str = SECRET,
    now: float = NOW,
) -> Identity:
    return prove_identity(
        user_id=user_id,
        user_hash_hex=user_hash_hex,
        identity_token=identity_token,
        secret=secret,
        now=now,
    )


def token(claims: dict[str, Any], *, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def refused(code: str, **kwargs: Any) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        prove(**kwargs)
    assert info.value.code == code
    assert info.value.status == 401
    return info.value


def test_nothing_given_is_a_guest() -> None:
    assert prove() == Identity(None)
    assert prove(secret="") == Identity(None)
    assert prove().context == {}


def test_user_id_without_proof_is_refused() -> None:
    err = refused("identity_unproven", user_id="u-1")
    assert err.field == "userId"


def test_user_hash_without_user_id_is_refused() -> None:
    refused("identity_unproven", user_hash_hex=user_hash("u-1", SECRET))


def test_user_hash_is_hex_hmac_sha256_of_the_user_id() -> None:
    expected = hmac.new(SECRET.encode(), b"u-1", hashlib.sha256).hexdigest()
    assert user_hash("u-1", SECRET) == expected
    assert prove(user_id="u-1", user_hash_hex=expected) == Identity("u-1")


def test_upper_case_user_hash_is_accepted() -> None:
    assert prove(user_id="u-1", user_hash_hex=user_hash("u-1", SECRET).upper()).user_id == "u-1"


@pytest.mark.parametrize(
    "bad",
    [
        user_hash("u-2", SECRET),  # another user's proof
        user_hash("u-1", "other" * 13),  # another secret
        "0" * 64,
        "",
    ],
)
def test_wrong_user_hash_is_refused(bad: str) -> None:
    err = refused("identity_unproven", user_id="u-1", user_hash_hex=bad)
    assert err.field == "userHash"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user_id": "u-1"},
        {"user_id": "u-1", "user_hash_hex": user_hash("u-1", "")},
        {"identity_token": "x.y.z"},
    ],
)
def test_claims_without_a_configured_secret_are_refused(kwargs: dict[str, Any]) -> None:
    refused("identity_not_configured", secret="", **kwargs)


def test_valid_token_gives_sub_and_extra_claims_as_context() -> None:
    claims = {
        "sub": "u-7",
        "exp": NOW + 600,
        "iat": NOW,
        "nbf": NOW,
        "iss": "shop",
        "jti": "j-1",
        "membershipLevel": "gold",
        "name": "Ada",
    }
    identity = prove(identity_token=token(claims))
    assert identity.user_id == "u-7"
    assert identity.context == {"membershipLevel": "gold", "name": "Ada"}


def test_token_with_matching_user_id_is_accepted() -> None:
    identity = prove(user_id="u-7", identity_token=token({"sub": "u-7", "exp": NOW + 60}))
    assert identity.user_id == "u-7"


def test_token_with_other_user_id_is_a_mismatch() -> None:
    err = refused(
        "identity_mismatch",
        user_id="u-8",
        identity_token=token({"sub": "u-7", "exp": NOW + 60}),
    )
    assert err.field == "userId"


def test_expiry_allows_the_clock_leeway_and_no_more() -> None:
    assert CLOCK_LEEWAY_SECONDS == 30
    within = token({"sub": "u", "exp": NOW - CLOCK_LEEWAY_SECONDS + 1})
    assert prove(identity_token=within).user_id == "u"
    beyond = token({"sub": "u", "exp": NOW - CLOCK_LEEWAY_SECONDS - 1})
    refused("invalid_identity_token", identity_token=beyond)


def test_expiry_is_judged_by_the_now_argument_not_the_wall_clock() -> None:
    # Valid by the wall clock, but expired at the `now` the caller gives.
    wall = time.time()
    fresh = token({"sub": "u", "exp": wall + 3600})
    refused("invalid_identity_token", identity_token=fresh, now=wall + 7200)
    # Long expired by the wall clock, but valid at the `now` the caller gives.
    old = token({"sub": "u", "exp": 1_000_600, "iat": 1_000_000})
    assert prove(identity_token=old, now=1_000_100).user_id == "u"


def test_issued_at_is_judged_by_the_now_argument_not_the_wall_clock() -> None:
    later = 4_000_000_000.0  # year 2096: iat is in the wall clock's future
    issued_later = token({"sub": "u", "exp": later + 600, "iat": later})
    assert prove(identity_token=issued_later, now=later).user_id == "u"


def test_shop_clock_slightly_ahead_is_within_the_leeway() -> None:
    wall = time.time()
    ahead = token({"sub": "u", "exp": wall + 600, "iat": wall + 10, "nbf": wall + 10})
    assert prove(identity_token=ahead, now=wall).user_id == "u"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_not_yet_valid_beyond_the_leeway_is_refused(claim: str) -> None:
    future = token({"sub": "u", "exp": NOW + 3600, claim: NOW + CLOCK_LEEWAY_SECONDS + 60})
    refused("invalid_identity_token", identity_token=future)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "u"},  # no exp
        {"exp": NOW + 60},  # no sub
        {"sub": "", "exp": NOW + 60},
        {"sub": 42, "exp": NOW + 60},
        {"sub": "u", "exp": "tomorrow"},
    ],
)
def test_token_missing_or_malformed_claims_is_invalid(claims: dict[str, Any]) -> None:
    err = refused("invalid_identity_token", identity_token=token(claims))
    assert err.field in {None, "identityToken"}


def test_token_signed_with_another_secret_is_invalid() -> None:
    forged = token({"sub": "u", "exp": NOW + 60}, key="x" * 64)
    err = refused("invalid_identity_token", identity_token=forged)
    assert err.field == "identityToken"


def test_unsigned_token_is_refused() -> None:
    unsigned = jwt.encode({"sub": "u", "exp": NOW + 60}, None, algorithm="none")
    refused("invalid_identity_token", identity_token=unsigned)


def test_hs512_token_is_refused_even_with_the_right_secret() -> None:
    other_alg = token({"sub": "u", "exp": NOW + 60}, algorithm="HS512")
    refused("invalid_identity_token", identity_token=other_alg)


def test_tampered_payload_is_refused() -> None:
    good = token({"sub": "u", "exp": NOW + 60})
    evil = token({"sub": "admin", "exp": NOW + 60}, key="x" * 64)
    header, _, signature = good.split(".")
    spliced = ".".join([header, evil.split(".")[1], signature])
    refused("invalid_identity_token", identity_token=spliced)


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", "not a jwt at all"])
def test_garbage_token_is_refused(garbage: str) -> None:
    refused("invalid_identity_token", identity_token=garbage)


def test_token_wins_over_user_hash_when_both_are_given() -> None:
    identity = prove(
        user_id="u",
        user_hash_hex="0" * 64,
        identity_token=token({"sub": "u", "exp": NOW + 60, "tier": 2}),
    )
    assert identity == Identity("u", {"tier": 2})


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"sub": "a\x00b"}, "invalid_characters"),
        ({"sub": "u-1", "plan": {"tier": "gold\x00"}}, "invalid_characters"),
        ({"sub": "u-1", "score": float("nan")}, "invalid_json"),
        ({"sub": "u-1", "score": float("inf")}, "invalid_json"),
        (
            {
                "sub": "u-1",
                "deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
            },
            "too_deep",
        ),
    ],
)
def test_signed_claims_postgresql_cannot_store_are_a_400(claims: dict[str, Any], code: str) -> None:
    # Signed by the shop, yet stored as text and jsonb: a NUL or NaN would fail in PostgreSQL.
    signed = token({**claims, "exp": NOW + 60})
    with pytest.raises(BadRequest) as info:
        prove(identity_token=signed)
    assert (info.value.code, info.value.field, info.value.status) == (code, "identityToken", 400)


def test_a_lone_surrogate_in_a_claim_is_a_400() -> None:
    # PyJWT cannot encode one; hand-sign the payload as a shop's library in another language may.
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    body = jwt.utils.base64url_encode(b'{"sub":"a\\ud800","exp":%d}' % int(NOW + 60))
    mac = hmac.new(SECRET.encode(), header + b"." + body, hashlib.sha256).digest()
    signed = b".".join([header, body, jwt.utils.base64url_encode(mac)]).decode()
    with pytest.raises(BadRequest) as info:
        prove(identity_token=signed)
    assert (info.value.code, info.value.field) == ("invalid_characters", "identityToken")
