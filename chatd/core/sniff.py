"""What a file is, decided by its bytes alone (never its name or the client's content type).

The first bytes are matched against magic numbers: the six types chatd can accept, and the
kinds it refuses by name (HTML, SVG, ZIP, executables, ...) so the refusal can say what it saw.
Anything else is plain text only if every byte of it is UTF-8 text without NUL or control
characters other than tab, newline and carriage return: `TextCheck` follows the upload chunk by
chunk, so a text file is checked to its last byte without being held whole.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Literal

SNIFF_BYTES = 1024  # what `sniff` needs to decide (a shorter file is decided at its end)

Kind = Literal["image", "file"]


@dataclass(frozen=True)
class Sniffed:
    """What the bytes are: `mime` for a type chatd can store, None for one it never stores."""

    label: str  # for people: "PNG image", "HTML", "ZIP archive", ...
    mime: str | None
    kind: Kind = "file"
    text: bool = False  # decided only by reading all of it (TextCheck)


JPEG = Sniffed("JPEG image", "image/jpeg", "image")
PNG = Sniffed("PNG image", "image/png", "image")
GIF = Sniffed("GIF image", "image/gif", "image")
WEBP = Sniffed("WebP image", "image/webp", "image")
PDF = Sniffed("PDF document", "application/pdf")
TEXT = Sniffed("plain text", "text/plain", text=True)
UNKNOWN = Sniffed("an unknown binary format", None)

# Prefix -> what it is. Checked in order; the first match wins.
_MAGIC: tuple[tuple[bytes, Sniffed], ...] = (
    (b"\xff\xd8\xff", JPEG),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"GIF87a", GIF),
    (b"GIF89a", GIF),
    (b"%PDF-", PDF),
    (b"PK\x03\x04", Sniffed("ZIP archive (or a document made of one: docx, xlsx, odt, jar)", None)),
    (b"PK\x05\x06", Sniffed("ZIP archive", None)),
    (b"\x1f\x8b", Sniffed("GZIP archive", None)),
    (b"Rar!\x1a\x07", Sniffed("RAR archive", None)),
    (b"7z\xbc\xaf\x27\x1c", Sniffed("7-Zip archive", None)),
    (b"\xfd7zXZ\x00", Sniffed("XZ archive", None)),
    (b"BZh", Sniffed("BZIP2 archive", None)),
    (b"MZ", Sniffed("Windows executable", None)),
    (b"\x7fELF", Sniffed("ELF executable", None)),
    (b"\xca\xfe\xba\xbe", Sniffed("Mach-O or Java class file", None)),
    (b"\xcf\xfa\xed\xfe", Sniffed("Mach-O executable", None)),
    (b"\x00asm", Sniffed("WebAssembly module", None)),
    (b"#!", Sniffed("script", None)),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", Sniffed("Microsoft Office 97-2003 document", None)),
    (b"{\\rtf", Sniffed("RTF document", None)),
    (b"%!PS", Sniffed("PostScript document", None)),
    (b"SQLite format 3\x00", Sniffed("SQLite database", None)),
    (b"BM", Sniffed("BMP image", None)),
    (b"II*\x00", Sniffed("TIFF image", None)),
    (b"MM\x00*", Sniffed("TIFF image", None)),
    (b"\x00\x00\x01\x00", Sniffed("ICO image", None)),
    (b"8BPS", Sniffed("Photoshop image", None)),
    (b"\x00\x00\x00\x0cjP  ", Sniffed("JPEG 2000 image", None)),
    (b"\xff\x0a", Sniffed("JPEG XL image", None)),
    (b"ID3", Sniffed("MP3 audio", None)),
    (b"OggS", Sniffed("Ogg media", None)),
    (b"fLaC", Sniffed("FLAC audio", None)),
    (b"\x1aE\xdf\xa3", Sniffed("Matroska/WebM video", None)),
)
_FTYP = {  # ISO base media (bytes 4..8 "ftyp", then the brand)
    b"heic": "HEIC image",
    b"heix": "HEIC image",
    b"mif1": "HEIF image",
    b"avif": "AVIF image",
    b"qt  ": "QuickTime video",
}
# After a BOM and leading white space: markup a browser would run or render as a document.
_MARKUP = re.compile(
    rb"<(?:!doctype\s+html|html|head|body|script|iframe|h1|div|font|table|a|style|title|b|br|p"
    rb"|!--)[\s>]",
    re.IGNORECASE,
)
_SVG = re.compile(rb"<svg[\s>]|<!doctype\s+svg[\s>]", re.IGNORECASE)
_XML = re.compile(rb"<\?xml[\s?]", re.IGNORECASE)
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def sniff(head: bytes) -> Sniffed:
    """What a file starting with `head` (its first SNIFF_BYTES, or all of a shorter file) is."""
    for magic, found in _MAGIC:
        if head.startswith(magic):
            return found
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:4] == b"RIFF":
        return Sniffed("RIFF media (WAV, AVI)", None)
    if head[4:8] == b"ftyp":
        return Sniffed(_FTYP.get(head[8:12], "MP4/QuickTime media"), None)
    if head.startswith(_UTF16_BOMS):
        return Sniffed("UTF-16 text (send UTF-8)", None)
    text = head.removeprefix(_UTF8_BOM).lstrip(b" \t\r\n\f")
    if _SVG.match(text) or (_XML.match(text) and _SVG.search(text)):
        return Sniffed("SVG", None)
    if _MARKUP.match(text):
        return Sniffed("HTML", None)
    if _XML.match(text):
        return Sniffed("XML", None)
    if b"\x00" in head:
        return UNKNOWN
    return TEXT


class TextCheck:
    """Follows a file believed to be text, chunk by chunk: `feed` then `finish`; each returns
    None while it is still text, or why it is not."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")

    def feed(self, data: bytes) -> str | None:
        try:
            decoded = self._decoder.decode(data)
        except UnicodeDecodeError:
            return "not valid UTF-8 text"
        return _controls(decoded)

    def finish(self) -> str | None:
        try:
            decoded = self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "not valid UTF-8 text (it ends inside a character)"
        return _controls(decoded)


# C0 controls but tab, newline and carriage return; DEL; C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _controls(text: str) -> str | None:
    match = _CONTROL.search(text)
    if match is None:
        return None
    return f"binary data (control character U+{ord(match.group()):04X})"
