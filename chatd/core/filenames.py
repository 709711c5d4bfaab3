"""A client's file name, made safe to show and to offer as a download name; never used as a path.

The stored name is the last path segment (`../` and `C:\\` are gone), without control or
formatting characters (a right-to-left override can make `photo\u202egpj.exe` look like
`photoexe.jpg`), at most MAX_NAME characters, and with an extension that says what the bytes
are: a PNG sent as `invoice.pdf` is kept as `invoice.pdf.png`.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

MAX_NAME = 120

EXTENSIONS: dict[str, tuple[str, ...]] = {  # the first is the one a wrong extension becomes
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "image/png": (".png",),
    "image/webp": (".webp",),
    "image/gif": (".gif",),
    "application/pdf": (".pdf",),
    "text/plain": (".txt", ".text", ".log", ".csv", ".md"),
}
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_SPACES = re.compile(r"\s+")


def display_name(raw: str | None, mime: str) -> str:
    """`raw` (the multipart filename, possibly absent or hostile) as chatd stores and shows it."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(
        " " if unicodedata.category(ch) == "Zs" else ch
        for ch in name
        if unicodedata.category(ch) not in _DROPPED
    )
    name = _SPACES.sub(" ", name).strip(" .")
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    known = EXTENSIONS.get(mime, ("",))
    suffix = f".{extension}" if extension else ""
    if suffix.lower() not in known:
        stem, suffix = name, known[0]  # a wrong extension stays part of the name: "invoice.pdf.png"
    stem = stem.strip(" .")[: MAX_NAME - len(suffix)].rstrip(" .")
    return f"{stem or ('image' if mime.startswith('image/') else 'file')}{suffix}"


def content_disposition(disposition: str, name: str) -> str:
    """`inline` or `attachment`, with an ASCII fallback name and the real one (RFC 6266/5987)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9 ._()\-]", "_", ascii_name).strip()
    stem, dot, extension = ascii_name.rpartition(".")
    if not (stem if dot else ascii_name).strip(" ._"):  # nothing readable left of the stem
        ascii_name = f"file.{extension}" if dot else "file"
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
