"""File names shown and offered for download (chatd/core/filenames.py)."""

from __future__ import annotations

import pytest

from chatd.core.filenames import MAX_NAME, content_disposition, display_name


@pytest.mark.parametrize(
    ("raw", "mime", "shown"),
    [
        ("../../etc/passwd", "text/plain", "passwd.txt"),
        ("..\\..\\windows\\win.ini", "text/plain", "win.ini.txt"),
        ("C:\\Users\\ann\\Desktop\\invoice.PDF", "application/pdf", "invoice.PDF"),
        ("photo.pdf", "image/png", "photo.pdf.png"),
        ("photo.jpeg", "image/jpeg", "photo.jpeg"),
        ("photo\u202egpj.exe", "image/png", "photogpj.exe.png"),
        ("in\x00voi\x1bce\x7f.pdf", "application/pdf", "invoice.pdf"),
        ("  \t report \n 2024 .txt", "text/plain", "report 2024.txt"),
        ("...", "image/gif", "image.gif"),
        ("", "application/pdf", "file.pdf"),
        (None, "image/webp", "image.webp"),
        (".bashrc", "text/plain", "bashrc.txt"),
    ],
)
def test_names_are_made_safe(raw: str | None, mime: str, shown: str) -> None:
    assert display_name(raw, mime) == shown


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = display_name("a" * 300 + ".png", "image/png")
    assert len(name) == MAX_NAME
    assert name.endswith("a.png")


def test_no_control_or_separator_survives() -> None:
    hostile = "".join(chr(c) for c in range(0x20)) + "/\\\u2028\u2029\u200b\ufeffname.txt"
    shown = display_name(hostile, "text/plain")
    assert shown == "name.txt"


def test_content_disposition_has_an_ascii_fallback_and_the_real_name() -> None:
    header = content_disposition("attachment", 'Rechnung "März".pdf')
    assert header.startswith('attachment; filename="Rechnung _Marz_.pdf"; ')
    assert header.endswith("filename*=UTF-8''Rechnung%20%22M%C3%A4rz%22.pdf")
    assert content_disposition("inline", "✓.png").startswith('inline; filename="file.png"')
