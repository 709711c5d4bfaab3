"""Helpers for the attachment tests: files made on the spot, and uploads over real HTTP."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from chatd.db.pool import Pool
from tests.chat import Session


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_with_location(width: int = 80, height: int = 40) -> bytes:
    """A JPEG whose EXIF has a GPS position, a camera name and orientation 6 (rotate 90°)."""
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was held sideways
    exif[0x010F] = "ShopCam"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


async def upload(
    client: httpx.AsyncClient,
    session: Session,
    data: bytes,
    filename: str = "file.bin",
    *,
    content_type: str = "application/octet-stream",
) -> httpx.Response:
    return await client.post(
        "/api/chat/upload",
        headers=session.auth,
        data={"sessionId": session.id},
        files={"file": (filename, data, content_type)},
    )


async def attachment_counts(pool: Pool) -> dict[str, int]:
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT (SELECT count(*) FROM chat_attachments) AS attachments,"
                " (SELECT count(*) FROM chat_attachment_chunks) AS chunks"
            )
        ).fetchone()
    assert row is not None
    return {k: int(v) for k, v in row.items()}
