"""Webhook signatures: the Standard Webhooks test vector, rotation, tampering, freshness, garbage."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from chatd.core.signing import (
    SignatureError,
    decode_secret,
    hex_signature,
    sign_headers,
    standard_signature,
    verify_callback,
)

# The Standard Webhooks specification's published example (also Svix's manual-verification docs).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

OLD = "whsec_" + base64.b64encode(b"old-secret-of-thirty-two-bytes!!").decode()
NEW = "plain-text-new-secret"
BODY = b'{"sessionId":"s-1","response":{"content":"hi"}}'
NOW = 1_700_000_000


def signed(secrets: list[str], *, body: bytes = BODY, ts: int = NOW) -> dict[str, str]:
    return sign_headers(secrets, "msg_1", ts, body)


def reason(headers: dict[str, str], secrets: list[str], *, body: bytes = BODY) -> str:
    with pytest.raises(SignatureError) as info:
        verify_callback(headers, body, secrets, now=NOW)
    assert str(info.value) == info.value.message
    return info.value.reason


# --- signing -----------------------------------------------------------------------------------


def test_reproduces_the_standard_webhooks_reference_signature() -> None:
    assert standard_signature(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE


def test_verifies_the_standard_webhooks_reference_example() -> None:
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TS),
        "webhook-signature": SPEC_SIGNATURE,
    }
    assert verify_callback(headers, SPEC_BODY, [SPEC_SECRET], now=SPEC_TS + 10) == "standard"


def test_decode_secret_forms() -> None:
    assert decode_secret("whsec_aGVsbG8=") == b"hello"
    assert decode_secret("hello") == b"hello"
    assert decode_secret("pässwort") == "pässwort".encode()


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not base64!", "whsec_aGVsbG8"])
def test_decode_secret_refuses_unusable_secrets(secret: str) -> None:
    with pytest.raises(ValueError, match="secret") as info:
        decode_secret(secret)
    assert "not base64!" not in str(info.value)  # the secret itself is never echoed


def test_sign_headers_one_entry_per_secret_in_order() -> None:
    headers = sign_headers([OLD, NEW], "msg_1", NOW, BODY)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(NOW)
    assert headers["webhook-signature"].split(" ") == [
        standard_signature(OLD, "msg_1", NOW, BODY),
        standard_signature(NEW, "msg_1", NOW, BODY),
    ]


def test_sign_headers_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="at least one"):
        sign_headers([], "msg_1", NOW, BODY)


def test_hex_signature_is_the_guides_scheme() -> None:
    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert hex_signature("s3cret", BODY) == expected
    # The configured string is the key verbatim, as n8n's Crypto node would use it.
    assert hex_signature(OLD, BODY) == hmac.new(OLD.encode(), BODY, hashlib.sha256).hexdigest()
    with pytest.raises(ValueError, match="empty"):
        hex_signature("", BODY)


# --- Standard Webhooks verification ------------------------------------------------------------


def test_round_trip_and_rotation_accept_either_secret() -> None:
    both = signed([OLD, NEW])
    assert verify_callback(both, BODY, [OLD, NEW], now=NOW) == "standard"
    assert verify_callback(both, BODY, [NEW], now=NOW) == "standard"
    assert verify_callback(signed([OLD]), BODY, [OLD, NEW], now=NOW) == "standard"
    assert verify_callback(signed([NEW]), BODY, [OLD, NEW], now=NOW) == "standard"


def test_signature_from_a_removed_secret_is_rejected() -> None:
    assert reason(signed([OLD]), [NEW]) == "mismatch"


def test_no_configured_secret_is_a_mismatch() -> None:
    with pytest.raises(SignatureError, match="no callback secret") as info:
        verify_callback(signed([NEW]), BODY, [], now=NOW)
    assert info.value.reason == "mismatch"


@pytest.mark.parametrize(
    ("header", "value"),
    [("webhook-id", "msg_2"), ("webhook-timestamp", str(NOW + 1))],
)
def test_tampered_id_or_timestamp_is_a_mismatch(header: str, value: str) -> None:
    headers = {**signed([NEW]), header: value}
    assert reason(headers, [NEW]) == "mismatch"


@pytest.mark.parametrize("body", [BODY + b" ", BODY[:-1], b"", BODY.replace(b"hi", b"HI")])
def test_tampered_body_is_a_mismatch(body: bytes) -> None:
    assert reason(signed([NEW]), [NEW], body=body) == "mismatch"


def test_raw_bytes_are_verified_not_a_reserialisation() -> None:
    spaced = b'{"sessionId": "s-1"}'
    headers = signed([NEW], body=spaced)
    assert verify_callback(headers, spaced, [NEW], now=NOW) == "standard"
    assert reason(headers, [NEW], body=b'{"sessionId":"s-1"}') == "mismatch"


@pytest.mark.parametrize("offset", [-301, 301, -86_400, 10**9])
def test_stale_in_both_directions(offset: int) -> None:
    assert reason(signed([NEW], ts=NOW + offset), [NEW]) == "stale"


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_tolerance_is_inclusive(offset: int) -> None:
    assert verify_callback(signed([NEW], ts=NOW + offset), BODY, [NEW], now=NOW) == "standard"


def test_tolerance_is_configurable_and_now_may_be_fractional() -> None:
    headers = signed([NEW], ts=NOW - 20)
    assert verify_callback(headers, BODY, [NEW], now=NOW + 0.5, tolerance=30) == "standard"
    with pytest.raises(SignatureError) as info:
        verify_callback(headers, BODY, [NEW], now=NOW + 0.5, tolerance=10)
    assert info.value.reason == "stale"


def test_a_forged_stale_request_is_reported_as_mismatch() -> None:
    headers = {**signed([OLD], ts=NOW - 3600)}
    assert reason(headers, [NEW]) == "mismatch"


def test_unknown_versions_are_ignored() -> None:
    good = signed([NEW])["webhook-signature"]
    headers = {**signed([NEW]), "webhook-signature": f"v2,abc v1a,xyz= {good}"}
    assert verify_callback(headers, BODY, [NEW], now=NOW) == "standard"
    only_future = {**signed([NEW]), "webhook-signature": "v2," + good[3:]}
    assert reason(only_future, [NEW]) == "mismatch"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp"])
def test_standard_needs_id_and_timestamp(missing: str) -> None:
    headers = signed([NEW])
    del headers[missing]
    assert reason(headers, [NEW]) == "missing"


def test_no_signature_header_at_all_is_missing() -> None:
    assert reason({"content-type": "application/json"}, [NEW]) == "missing"


def test_standard_wins_when_both_headers_are_present() -> None:
    headers = {**signed([NEW]), "x-webhook-signature": "0" * 64}
    assert verify_callback(headers, BODY, [NEW], now=NOW) == "standard"
    headers = {**signed([OLD]), "x-webhook-signature": hex_signature(NEW, BODY)}
    assert reason(headers, [NEW]) == "mismatch"


GOOD_B64 = base64.b64encode(b"\x00" * 32).decode()


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [
        ("webhook-signature", "", "malformed"),
        ("webhook-signature", "   ", "malformed"),
        ("webhook-signature", "v1", "malformed"),
        ("webhook-signature", "v1,", "malformed"),
        ("webhook-signature", "v1,not base64", "malformed"),
        ("webhook-signature", "v1,@@@@", "malformed"),
        ("webhook-signature", "v1,aGVsbG8=", "malformed"),  # decodes, but not 32 bytes
        ("webhook-signature", "v1,ÿÿÿÿ", "malformed"),
        ("webhook-signature", "v1,\udcff\udcfe", "malformed"),
        ("webhook-signature", "v1," + "A" * 100_000, "malformed"),
        ("webhook-signature", " ".join(["v1," + GOOD_B64] * 17), "malformed"),
        ("webhook-signature", "v1," + GOOD_B64, "mismatch"),
        ("webhook-signature", "v1,bad v1," + GOOD_B64, "mismatch"),
        ("webhook-id", "", "malformed"),
        ("webhook-id", "msg 1", "malformed"),
        ("webhook-id", "msg_é", "malformed"),
        ("webhook-id", "m" * 257, "malformed"),
        ("webhook-timestamp", "", "malformed"),
        ("webhook-timestamp", "-5", "malformed"),
        ("webhook-timestamp", "1e9", "malformed"),
        ("webhook-timestamp", "1700000000.5", "malformed"),
        (
            "webhook-timestamp",
            "\u0661\u0667" + "\u0660" * 8,
            "malformed",
        ),  # Unicode digits int() would take
        ("webhook-timestamp", "9" * 5000, "malformed"),
        ("webhook-timestamp", "nan", "malformed"),
    ],
)
def test_garbage_standard_headers_are_refused_cleanly(
    header: str, value: str, expected: str
) -> None:
    headers = {**signed([NEW]), header: value}
    assert reason(headers, [NEW]) == expected


def test_surrounding_whitespace_in_id_and_timestamp_is_tolerated() -> None:
    headers = signed([NEW])
    headers = {**headers, "webhook-id": " msg_1 ", "webhook-timestamp": f"{NOW}\t"}
    assert verify_callback(headers, BODY, [NEW], now=NOW) == "standard"


# --- hex verification --------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["{}", "sha256={}", "SHA256={}", "  {}  "])
def test_hex_forms_are_accepted(form: str) -> None:
    headers = {"x-webhook-signature": form.format(hex_signature(NEW, BODY))}
    assert verify_callback(headers, BODY, [NEW], now=NOW) == "hex"
    upper = {"x-webhook-signature": form.format(hex_signature(NEW, BODY).upper())}
    assert verify_callback(upper, BODY, [NEW], now=NOW) == "hex"


def test_hex_rotation_and_removed_secret() -> None:
    headers = {"x-webhook-signature": hex_signature(OLD, BODY)}
    assert verify_callback(headers, BODY, [OLD, NEW], now=NOW) == "hex"
    assert reason(headers, [NEW]) == "mismatch"


def test_hex_tampered_body_is_a_mismatch() -> None:
    headers = {"x-webhook-signature": hex_signature(NEW, BODY)}
    assert reason(headers, [NEW], body=BODY + b"\n") == "mismatch"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "sha256=",
        "0" * 63,
        "0" * 65,
        "g" * 64,
        "sha1=" + "0" * 64,
        "\uff10" * 64,  # fullwidth digits
        "\u212a" * 64,  # Kelvin sign: lower() would turn it into "k"
        "\udcff" * 64,
        "0" * 100_000,
    ],
)
def test_garbage_hex_header_is_malformed(value: str) -> None:
    assert reason({"x-webhook-signature": value}, [NEW]) == "malformed"
