"""Signed file URLs and the Range header: who may read a file, and which bytes of it.

A file is served at /api/chat/files/<id>?v=<variant>&exp=<unix>&sig=<hmac>. The signature is
HMAC-SHA256 over the id, the variant and the expiry, under one key every chatd process shares
(attachments.url_secret, or one generated once and kept in the database), so the URL itself is
the permission: a browser's <img src>, a download link and n8n can use it, nobody can make one,
and it stops working at `exp`. Expiries are rounded up to EXPIRY_STEP so a message read twice
within a few minutes carries the same URLs (the browser's cache keeps working).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

Variant = Literal["original", "thumb"]
FILES_PATH = "/api/chat/files/"
EXPIRY_STEP = 300  # seconds


def signature(key: bytes, attachment_id: str, variant: str, expires: int) -> str:
    mac = hmac.new(key, f"{attachment_id}\n{variant}\n{expires}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


class UrlRefused(Exception):
    def __init__(self, code: Literal["invalid_signature", "url_expired"], message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_signature(
    key: bytes,
    attachment_id: str,
    variant: str,
    expires: str | None,
    sig: str | None,
    *,
    now: float,
) -> int:
    """The URL's expiry (Unix seconds) if `sig` signs it and it has not passed; else UrlRefused."""
    if not expires or not sig or not expires.isdigit() or len(expires) > 12:
        raise UrlRefused("invalid_signature", "this file link is not valid (exp and sig needed)")
    expected = signature(key, attachment_id, variant, int(expires))
    if not hmac.compare_digest(expected.encode(), sig.encode(errors="replace")):
        raise UrlRefused("invalid_signature", "this file link is not valid")
    if int(expires) <= now:
        raise UrlRefused("url_expired", "this file link has expired; reload the chat for a new one")
    return int(expires)


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires: int


class FileLinks:
    """Makes the URLs. The key and the public base URL are known only once chatd runs (the key
    may come from the database, the base from the bound port): `configure` sets them."""

    def __init__(self, ttl_seconds: float, key: bytes = b"", base_url: str = "") -> None:
        self.ttl_seconds = ttl_seconds
        self.key = key
        self.base_url = base_url.rstrip("/")

    def configure(self, *, key: bytes | None = None, base_url: str | None = None) -> None:
        if key is not None:
            self.key = key
        if base_url is not None:
            self.base_url = base_url.rstrip("/")

    @property
    def ready(self) -> bool:
        return bool(self.key)

    def expiry(self, now: float) -> int:
        return math.ceil((now + self.ttl_seconds) / EXPIRY_STEP) * EXPIRY_STEP

    def sign(self, attachment_id: str, variant: Variant, now: float) -> SignedUrl:
        if not self.key:
            raise RuntimeError("FileLinks used before configure(key=...)")
        expires = self.expiry(now)
        sig = signature(self.key, attachment_id, variant, expires)
        path = f"{FILES_PATH}{quote(attachment_id, safe='')}?v={variant}&exp={expires}&sig={sig}"
        return SignedUrl(f"{self.base_url}{path}", expires)


# --- Range (RFC 9110 14) --------------------------------------------------------------------------

_RANGE = re.compile(r"bytes=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)


class UnsatisfiableRange(Exception):
    """416: the range lies wholly past the end."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte range [start, stop) a Range header asks of a `size`-byte file; None: send it all
    (no header, a form we do not serve, several ranges: a server may ignore Range)."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0:
            raise UnsatisfiableRange
        return max(0, size - suffix), size
    start = int(first)
    stop = size if not last else min(size, int(last) + 1)
    if last and int(last) < start:
        return None  # invalid: ignored, the whole file is sent
    if start >= size:
        raise UnsatisfiableRange
    return start, stop
