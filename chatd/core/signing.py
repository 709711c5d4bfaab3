"""Webhook signatures both ways: Standard Webhooks (`webhook-*` headers) for what chatd sends and
receives, and the original guide's hex `X-Webhook-Signature` for n8n callbacks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Literal

SignatureReason = Literal["missing", "malformed", "stale", "mismatch"]
Scheme = Literal["standard", "hex"]

_PREFIX = "whsec_"
_DIGEST_SIZE = hashlib.sha256().digest_size
# Header values are bounded by the HTTP server already; these keep the work per request tiny.
_MAX_SIGNATURE_HEADER = 8192
_MAX_ENTRIES = 16
_MSG_ID = re.compile(r"[\x21-\x7e]{1,256}")
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
# ASCII-only matching: str.lower() or Unicode case folding could turn a lookalike into hex.
_HEX = re.compile(r"(?:sha256=)?([0-9a-f]{64})", re.IGNORECASE | re.ASCII)


class SignatureError(Exception):
    """A callback's signature could not be accepted; `reason` is a stable metrics label."""

    def __init__(self, reason: SignatureReason, message: str) -> None:
        super().__init__(message)
        self.reason: SignatureReason = reason
        self.message = message


def decode_secret(secret: str) -> bytes:
    """The HMAC key: "whsec_<base64>" (Standard Webhooks) is decoded, anything else is UTF-8."""
    if secret.startswith(_PREFIX):
        try:
            key = base64.b64decode(secret[len(_PREFIX) :], validate=True)
        except ValueError:
            # Never echo the secret itself into an error that might be logged.
            raise ValueError("a whsec_ secret is not valid base64") from None
    else:
        key = secret.encode("utf-8")
    if not key:
        # An empty key lets anyone sign; refuse it as loudly as a missing secret.
        raise ValueError("a webhook secret must not be empty")
    return key


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The spec's "v1,<base64>": HMAC-SHA256 over "<msg_id>.<timestamp>." followed by the body."""
    return "v1," + base64.b64encode(
        _standard_digest(decode_secret(secret), msg_id, timestamp, body)
    ).decode("ascii")


def sign_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers; one signature per secret while secrets rotate."""
    if not secrets:
        raise ValueError("at least one webhook secret is required to sign")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            standard_signature(secret, msg_id, timestamp, body) for secret in secrets
        ),
    }


def hex_signature(secret: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of the body, keyed with the secret's UTF-8 bytes verbatim.

    Verbatim (a "whsec_" prefix included, nothing decoded) because that is what the guide's
    `createHmac('sha256', secret)` and n8n's Crypto node compute from the same configured string.
    """
    if not secret:
        raise ValueError("a webhook secret must not be empty")
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_callback(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance: float = 300.0,
) -> Scheme:
    """Check a callback's signature over its raw bytes; the scheme used, or SignatureError.

    `headers` has lower-case keys. A request carrying `webhook-signature` is judged by the
    Standard Webhooks rules only, even if it also carries `x-webhook-signature`.
    """
    if not secrets:
        raise SignatureError("mismatch", "no callback secret is configured")
    if "webhook-signature" in headers:
        _verify_standard(headers, body, secrets, now=now, tolerance=tolerance)
        return "standard"
    if "x-webhook-signature" in headers:
        _verify_hex(headers["x-webhook-signature"], body, secrets)
        return "hex"
    raise SignatureError("missing", "no webhook-signature or x-webhook-signature header")


def _standard_digest(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def _verify_standard(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance: float,
) -> None:
    msg_id = _required(headers, "webhook-id").strip()
    raw_ts = _required(headers, "webhook-timestamp").strip()
    if not _MSG_ID.fullmatch(msg_id):
        raise SignatureError("malformed", "webhook-id is not 1-256 printable ASCII characters")
    if not _TIMESTAMP.fullmatch(raw_ts):
        raise SignatureError("malformed", "webhook-timestamp is not whole seconds")
    timestamp = int(raw_ts)
    given = _v1_signatures(headers["webhook-signature"])
    keys = [decode_secret(secret) for secret in secrets]
    expected = [_standard_digest(key, msg_id, timestamp, body) for key in keys]
    # Compare every pair, no early exit: which secret matched leaks nothing through timing.
    matched = False
    for candidate in given:
        for digest in expected:
            matched |= hmac.compare_digest(candidate, digest)
    if not matched:
        raise SignatureError("mismatch", "no webhook-signature entry matches an active secret")
    # Freshness is judged only once the sender is proven, so "stale" always means a genuine
    # sender with a skewed clock or a replay, never a forger: a label an operator can act on.
    if abs(now - timestamp) > tolerance:
        raise SignatureError(
            "stale", f"webhook-timestamp is more than {tolerance:g} s away from now"
        )


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise SignatureError("missing", f"{name} header is required with webhook-signature")
    return value


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded "v1," entries of a webhook-signature header; other versions are skipped."""
    if len(header) > _MAX_SIGNATURE_HEADER:
        raise SignatureError("malformed", "webhook-signature header is too long")
    entries = header.split()
    if not entries or len(entries) > _MAX_ENTRIES:
        raise SignatureError("malformed", "webhook-signature has no entries or too many")
    found: list[bytes] = []
    malformed = 0
    for entry in entries:
        version, sep, encoded = entry.partition(",")
        if not sep:
            malformed += 1
        elif version == "v1":
            digest = _b64_digest(encoded)
            if digest is None:
                malformed += 1
            else:
                found.append(digest)
    # Entries of unknown versions are ignored (the spec allows future schemes); if nothing at all
    # was readable, the header is garbage rather than a signature that failed to match.
    if not found and malformed == len(entries):
        raise SignatureError("malformed", "webhook-signature has no readable v1 entry")
    return found


def _b64_digest(encoded: str) -> bytes | None:
    try:
        digest = base64.b64decode(encoded, validate=True)
    except ValueError:  # binascii.Error, and non-ASCII text
        return None
    return digest if len(digest) == _DIGEST_SIZE else None


def _verify_hex(header: str, body: bytes, secrets: Sequence[str]) -> None:
    if len(header) > _MAX_SIGNATURE_HEADER:
        raise SignatureError("malformed", "x-webhook-signature header is too long")
    match = _HEX.fullmatch(header.strip())
    if match is None:
        raise SignatureError(
            "malformed", "x-webhook-signature is not 64 hex digits (optionally after sha256=)"
        )
    given = match.group(1).lower()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(given, hex_signature(secret, body))
    if not matched:
        raise SignatureError("mismatch", "x-webhook-signature matches no active secret")
