"""Images re-encoded without metadata, upright, with a thumbnail (chatd/files/images.py)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from chatd.files.images import ImageRefused, process_image
from tests.files import jpeg_with_location, png


def process(
    data: bytes, mime: str, max_pixels: int = 50_000_000
) -> tuple[Image.Image, Image.Image]:
    done = process_image(data, mime, max_pixels=max_pixels, thumb_pixels=32)
    return Image.open(io.BytesIO(done.data)), Image.open(io.BytesIO(done.thumbnail))


def test_exif_location_is_dropped_and_the_photo_turned_upright() -> None:
    sent = jpeg_with_location(80, 40)
    assert Image.open(io.BytesIO(sent)).getexif().get(0x8825)  # the GPS block is there
    assert b"ShopCam" in sent
    done = process_image(sent, "image/jpeg", max_pixels=10_000, thumb_pixels=32)
    assert b"ShopCam" not in done.data
    image, thumb = process(sent, "image/jpeg")
    assert image.format == "JPEG"
    assert dict(image.getexif()) == {}
    assert image.size == (40, 80)  # orientation 6 applied: the sideways photo stands up
    assert thumb.format == "WEBP"
    assert max(thumb.size) == 32


def test_png_keeps_transparency_and_drops_text_chunks() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Ann Example, 12 Main St")
    buffer = io.BytesIO()
    Image.new("RGBA", (20, 10), (1, 2, 3, 100)).save(buffer, "PNG", pnginfo=info)
    done = process_image(buffer.getvalue(), "image/png", max_pixels=10_000, thumb_pixels=32)
    assert b"Ann Example" not in done.data
    image = Image.open(io.BytesIO(done.data))
    assert image.mode == "RGBA"
    assert image.getpixel((0, 0)) == (1, 2, 3, 100)


def test_animated_gif_keeps_its_first_frame() -> None:
    frames = [Image.new("P", (8, 8), color) for color in (1, 2, 3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    image, _ = process(buffer.getvalue(), "image/gif")
    assert image.format == "GIF"
    assert getattr(image, "n_frames", 1) == 1


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    buffer = io.BytesIO()
    Image.new("1", (30_000, 30_000)).save(buffer, "PNG")  # 900 MP in about 100 KB
    assert len(buffer.getvalue()) < 200_000
    with pytest.raises(ImageRefused) as refused:
        process_image(buffer.getvalue(), "image/png", max_pixels=50_000_000, thumb_pixels=32)
    assert refused.value.code == "image_too_large"
    assert "30000 x 30000" in refused.value.message


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_a_truncated_image_is_unreadable(cut: float) -> None:
    data = png(200, 200)
    with pytest.raises(ImageRefused) as refused:
        process_image(data[: int(len(data) * cut)], "image/png", max_pixels=10**6, thumb_pixels=32)
    assert refused.value.code == "image_unreadable"


def test_bytes_that_only_start_like_an_image_are_unreadable() -> None:
    with pytest.raises(ImageRefused) as refused:
        process_image(
            b"\xff\xd8\xff" + b"\x00" * 100, "image/jpeg", max_pixels=10**6, thumb_pixels=32
        )
    assert refused.value.code == "image_unreadable"
