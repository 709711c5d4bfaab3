"""Images re-encoded with Pillow: metadata dropped (EXIF with its GPS location, XMP, comments),
orientation applied first (so a photo stays upright without its EXIF tag), a thumbnail made.

Synchronous and CPU-bound (a large photo takes hundreds of milliseconds): the caller runs it in
a worker thread. The pixel limit is checked on the header's size, before anything is decoded,
so an image that declares 100,000 x 100,000 pixels in a few kilobytes (a decompression bomb)
is refused without allocating its pixels. Animated GIF and WebP keep their first frame.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

from PIL import Image, ImageOps

# The limit is chatd's own (attachments.max_image_pixels), checked right after the header is
# read; Pillow's global one would only repeat it, as a warning, for larger images.
Image.MAX_IMAGE_PIXELS = None

_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF"}
THUMB_TYPE = "image/webp"
# What Pillow raises on bytes it cannot decode: truncated, corrupt, or not what they claim.
_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


class ImageRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # image_unreadable | image_too_large
        self.message = message


@dataclass(frozen=True)
class Processed:
    data: bytes  # the re-encoded image, same type as sent
    width: int
    height: int
    thumbnail: bytes  # THUMB_TYPE


def process_image(data: bytes, mime: str, *, max_pixels: int, thumb_pixels: int) -> Processed:
    """`data` (sniffed as `mime`) re-encoded without metadata, and its thumbnail."""
    form = _FORMATS[mime]
    try:
        with Image.open(io.BytesIO(data), formats=[form]) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise ImageRefused(
                    "image_too_large",
                    f"the image has {width} x {height} pixels; at most {max_pixels:,} are accepted",
                )
            opened.seek(0)
            opened.load()
            upright = ImageOps.exif_transpose(opened)
            clean = _without_metadata(upright, form)
            out = _encode(clean, form)
            thumb = _thumbnail(clean, thumb_pixels)
    except ImageRefused:
        raise
    except _UNREADABLE as exc:
        raise ImageRefused(
            "image_unreadable", f"the image cannot be read (truncated or corrupt): {exc}"
        ) from None
    return Processed(out, clean.width, clean.height, thumb)


def _without_metadata(image: Image.Image, form: str) -> Image.Image:
    if form == "JPEG" and image.mode not in ("L", "RGB", "CMYK"):
        image = image.convert("RGB")
    elif form == "WEBP" and image.mode not in ("RGB", "RGBA"):
        image = image.convert(
            "RGBA" if "A" in image.mode or "transparency" in image.info else "RGB"
        )
    elif form == "PNG" and image.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
        image = image.convert("RGBA")
    else:
        image = image.copy()
    # Colour (the ICC profile) and transparency stay; EXIF, XMP, comments, text chunks go.
    image.info = {k: v for k, v in image.info.items() if k in ("transparency", "icc_profile")}
    return image


def _encode(image: Image.Image, form: str) -> bytes:
    buffer = io.BytesIO()
    options: dict[str, object] = {}
    if form == "JPEG" or form == "WEBP":
        options = {"quality": 90}
    if form != "GIF" and "icc_profile" in image.info:
        options["icc_profile"] = image.info["icc_profile"]
    image.save(buffer, form, **options)
    return buffer.getvalue()


def _thumbnail(image: Image.Image, pixels: int) -> bytes:
    thumb = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P", "PA") else "RGB")
    thumb.thumbnail((pixels, pixels))
    buffer = io.BytesIO()
    thumb.save(buffer, "WEBP", quality=80)
    return buffer.getvalue()
