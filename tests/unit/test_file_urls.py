"""Signed file URLs and Range (chatd/core/file_urls.py)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from chatd.core.file_urls import (
    EXPIRY_STEP,
    FileLinks,
    UnsatisfiableRange,
    UrlRefused,
    check_signature,
    parse_range,
)

KEY = b"k" * 32
ID = "8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77"
NOW = 1_700_000_000.0


def signed(variant: str = "original", now: float = NOW) -> tuple[str, str, str]:
    links = FileLinks(3600, KEY, "https://chat.example/")
    url = links.sign(ID, variant, now).url  # type: ignore[arg-type]
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.path == f"/api/chat/files/{ID}"
    assert url.startswith("https://chat.example/api/")
    return query["v"], query["exp"], query["sig"]


def test_a_signed_url_is_accepted_until_it_expires() -> None:
    variant, exp, sig = signed()
    assert check_signature(KEY, ID, variant, exp, sig, now=NOW) == int(exp)
    assert int(exp) >= NOW + 3600
    assert int(exp) < NOW + 3600 + EXPIRY_STEP + 1
    with pytest.raises(UrlRefused) as refused:
        check_signature(KEY, ID, variant, exp, sig, now=int(exp))
    assert refused.value.code == "url_expired"


def test_urls_signed_a_moment_apart_are_the_same() -> None:
    assert signed(now=NOW) == signed(now=NOW + 1)


@pytest.mark.parametrize("what", ["id", "variant", "exp", "sig", "key"])
def test_anything_changed_is_refused(what: str) -> None:
    variant, exp, sig = signed()
    key, attachment_id = KEY, ID
    if what == "id":
        attachment_id = ID.replace("8c1e", "8c1f")
    elif what == "variant":
        variant = "thumb"
    elif what == "exp":
        exp = str(int(exp) + 3600)
    elif what == "sig":
        sig = ("A" if sig[0] != "A" else "B") + sig[1:]
    else:
        key = b"x" * 32
    with pytest.raises(UrlRefused) as refused:
        check_signature(key, attachment_id, variant, exp, sig, now=NOW)
    assert refused.value.code == "invalid_signature"


@pytest.mark.parametrize(
    ("exp", "sig"), [(None, "x"), ("1", None), ("", ""), ("-5", "x"), ("1e9", "x"), ("9" * 40, "x")]
)
def test_missing_or_malformed_parts_are_refused(exp: str | None, sig: str | None) -> None:
    with pytest.raises(UrlRefused) as refused:
        check_signature(KEY, ID, "original", exp, sig, now=NOW)
    assert refused.value.code == "invalid_signature"


def test_links_need_a_key() -> None:
    with pytest.raises(RuntimeError):
        FileLinks(60).sign(ID, "original", NOW)


@pytest.mark.parametrize(
    ("header", "span"),
    [
        (None, None),
        ("bytes=0-9", (0, 10)),
        ("bytes=10-", (10, 100)),
        ("bytes=-10", (90, 100)),
        ("bytes=-500", (0, 100)),
        ("bytes=95-500", (95, 100)),
        ("bytes=5-2", None),  # invalid: ignored
        ("bytes=0-1,5-6", None),  # several ranges: served whole
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_range(header: str | None, span: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == span


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=200-300", "bytes=-0"])
def test_range_past_the_end_is_unsatisfiable(header: str) -> None:
    with pytest.raises(UnsatisfiableRange):
        parse_range(header, 100)
