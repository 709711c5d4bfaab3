"""What a file is, by its bytes alone (chatd/core/sniff.py)."""

from __future__ import annotations

import pytest

from chatd.core.sniff import SNIFF_BYTES, TextCheck, sniff
from tests.files import PDF, jpeg_with_location, png


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (png(), "image/png"),
        (jpeg_with_location(), "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (PDF, "application/pdf"),
        (b"Order 1234 arrived damaged.\r\nPlease help.\n", "text/plain"),
        ("Grüße aus Köln 👋".encode(), "text/plain"),
        (b"\xef\xbb\xbfwith a byte order mark", "text/plain"),
    ],
)
def test_accepted_types_are_known_by_their_bytes(head: bytes, mime: str) -> None:
    assert sniff(head[:SNIFF_BYTES]).mime == mime


@pytest.mark.parametrize(
    ("head", "label"),
    [
        (b"<!DOCTYPE html><html><script>alert(1)</script>", "HTML"),
        (b"  \n<html>\n<body onload=alert(1)>", "HTML"),
        (b"<script>fetch('/steal')</script>", "HTML"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "SVG"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b'<?xml version="1.0"?><order/>', "XML"),
        (b"PK\x03\x04\x14\x00\x00\x00", "ZIP"),
        (b"MZ\x90\x00\x03\x00", "Windows executable"),
        (b"\x7fELF\x02\x01\x01", "ELF executable"),
        (b"#!/bin/sh\nrm -rf /\n", "script"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "HEIC image"),
        (b"BM\x36\x00\x00\x00", "BMP image"),
        (b"\xff\xfeh\x00i\x00", "UTF-16"),
        (b"\x00\x01\x02\x03binary", "unknown binary"),
    ],
)
def test_refused_kinds_are_named(head: bytes, label: str) -> None:
    found = sniff(head)
    assert found.mime is None
    assert label in found.label


def test_a_name_or_claimed_type_plays_no_part() -> None:
    # Only bytes go in: a PNG is a PNG whatever it is called.
    assert sniff(png()).label == "PNG image"


def test_text_mentioning_markup_later_is_still_text() -> None:
    assert sniff(b"The form says <script> is not allowed.").mime == "text/plain"


def test_text_check_follows_chunks_and_splits_inside_characters() -> None:
    check = TextCheck()
    data = "naïve café ✓\n".encode() * 3
    for i in range(len(data)):  # one byte at a time: every character split somewhere
        assert check.feed(data[i : i + 1]) is None
    assert check.finish() is None


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"abc\x00def", "U+0000"),
        (b"bell \x07", "U+0007"),
        (b"del \x7f", "U+007F"),
        ("c1 \u0085".encode(), "U+0085"),
        (b"latin-1 caf\xe9 ok", "not valid UTF-8"),
    ],
)
def test_text_check_refuses_binary(data: bytes, problem: str) -> None:
    found = TextCheck().feed(data)
    assert found is not None
    assert problem in found


def test_text_ending_inside_a_character_is_refused_at_the_end() -> None:
    check = TextCheck()
    assert check.feed("ok é".encode()[:-1]) is None
    finished = check.finish()
    assert finished is not None
    assert "ends inside" in finished
