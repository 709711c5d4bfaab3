"""One file of a multipart form, as its bytes stream in, to a ready chat_attachments row.

When its part begins, the session's quota is checked; its first bytes decide its type
(chatd/core/sniff.py) before anything is stored; then each piece is counted against the limits,
hashed and written to the store as it comes. Images are then re-encoded (chatd/files/images.py)
in a worker thread, a few at a time, because decoding is CPU work that would stall the event
loop. Used by POST /api/chat/upload (chatd/files/upload.py, one file) and by @n8n/chat's form
(chatd/files/n8n_chat_form.py, several). A refused or abandoned file leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import structlog
import trio

from chatd.core.filenames import display_name
from chatd.core.sniff import SNIFF_BYTES, Sniffed, TextCheck, sniff
from chatd.core.storage import CHUNK_BYTES, BlobStore, BlobVariant, BlobWriter
from chatd.core.tokens import new_id
from chatd.db.attachments import AttachmentStore, Finished
from chatd.errors import BadRequest, Overloaded, PayloadTooLarge, RateLimited, UnsupportedMediaType
from chatd.files.images import THUMB_TYPE, ImageRefused, Processed, process_image

log = structlog.get_logger(__name__)

LABELS = {  # what a refusal lists as accepted, in this order
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WebP",
    "image/gif": "GIF",
    "application/pdf": "PDF",
    "text/plain": "plain text (UTF-8)",
}
STORAGE_FULL_RETRY_SECONDS = 600


@dataclass(frozen=True)
class UploadPolicy:
    max_file_bytes: int
    session_bytes_per_day: int
    max_total_bytes: int  # 0: no limit
    allowed: frozenset[str]
    max_image_pixels: int
    thumbnail_pixels: int


@dataclass(frozen=True)
class Uploaded:
    id: str
    session_id: str
    file: Finished
    created_at: datetime


@dataclass(frozen=True)
class UploadParts:
    """What every upload shares: the row's store, the bytes' store, the image threads."""

    store: AttachmentStore
    blobs: BlobStore
    image_threads: trio.CapacityLimiter


class FileReceiver:
    """One file part: `begin`, `data` for each piece, `end`, then `complete`; `abandon` (also
    after `complete`) deletes whatever it stored. `field` names the form's part in refusals."""

    def __init__(
        self,
        parts: UploadParts,
        policy: UploadPolicy,
        session_id: str,
        *,
        field: str,
        named: bool = False,
    ) -> None:
        self._parts = parts
        self._policy = policy
        self._session_id = session_id
        self._field = field
        self._named = named  # refusals begin with the file's name (a form of several files)
        self._filename = ""
        self._room = 0  # bytes this file may still have (file limit, the session's day)
        self._quota_bound = False  # the room is the session's day, not the file limit
        self._frees_in: float | None = None
        self._size = 0
        self._head = bytearray()
        self._sniffed: Sniffed | None = None
        self._text: TextCheck | None = None
        self._hash = hashlib.sha256()
        self.id: str | None = None  # once the row exists
        self._writer: BlobWriter | None = None

    async def begin(self, filename: str) -> None:
        policy, session_id = self._policy, self._session_id
        usage = await self._parts.store.usage(session_id, with_total=policy.max_total_bytes > 0)
        if policy.max_total_bytes and (usage.total_bytes or 0) >= policy.max_total_bytes:
            raise Overloaded(
                "the shop's file storage is full; try again later",
                code="storage_full",
                retry_after=STORAGE_FULL_RETRY_SECONDS,
            )
        left_today = policy.session_bytes_per_day - usage.session_bytes
        if left_today <= 0:
            raise self._quota_refusal(usage.frees_in)
        self._room = min(policy.max_file_bytes, left_today)
        self._quota_bound = left_today < policy.max_file_bytes
        self._frees_in = usage.frees_in
        self._filename = filename

    def _quota_refusal(self, frees_in: float | None) -> RateLimited:
        day = self._policy.session_bytes_per_day
        return RateLimited(
            f"this chat has uploaded its {day:,} bytes for the day; try again later",
            code="upload_quota",
            retry_after=max(1.0, frees_in or 60.0),
        )

    async def data(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._room:
            if self._quota_bound:
                raise self._quota_refusal(self._frees_in)
            raise PayloadTooLarge(
                f"{self._prefix()}the file is larger than {self._policy.max_file_bytes:,} bytes",
                code="file_too_large",
                field=self._field,
            )
        if self._sniffed is None:
            self._head += data
            if len(self._head) >= SNIFF_BYTES:
                await self._decide()
            return
        await self._store(data)

    def _prefix(self) -> str:
        return f"{self._filename[:100]}: " if self._named and self._filename else ""

    async def _decide(self) -> None:
        head, self._head = bytes(self._head), bytearray()
        found = sniff(head)
        if found.mime is None or found.mime not in self._policy.allowed:
            raise UnsupportedMediaType(
                f"{self._prefix()}its content is recognised as {found.label}, which is not"
                f" accepted here; send {self._accepted()}",
                code="file_type_not_allowed",
                field=self._field,
            )
        self._sniffed = found
        if found.text:
            self._text = TextCheck()
        self.id = new_id()
        parts = self._parts
        await parts.store.start(self.id, self._session_id, parts.blobs.kind, CHUNK_BYTES)
        variant: BlobVariant = "upload" if found.kind == "image" else "original"
        self._writer = parts.blobs.writer(self.id, variant)
        await self._store(head)

    async def _store(self, data: bytes) -> None:
        if self._text is not None and (problem := self._text.feed(data)) is not None:
            self._refuse_text(problem)
        self._hash.update(data)
        assert self._writer is not None
        await self._writer.write(data)

    def _refuse_text(self, problem: str) -> None:
        raise UnsupportedMediaType(
            f"{self._prefix()}this file holds {problem}: it is not plain text; send {self._accepted()}",
            code="file_type_not_allowed",
            field=self._field,
        )

    def _accepted(self) -> str:
        return ", ".join(LABELS[mime] for mime in LABELS if mime in self._policy.allowed)

    async def end(self) -> None:
        if self._size == 0:
            raise BadRequest(
                f"{self._prefix()}the file is empty", code="empty_file", field=self._field
            )
        if self._sniffed is None:
            await self._decide()
        if self._text is not None and (problem := self._text.finish()) is not None:
            self._refuse_text(problem)
        assert self._writer is not None
        await self._writer.close()
        self._writer = None

    async def complete(self) -> Uploaded:
        found, attachment_id = self._sniffed, self.id
        assert found is not None
        assert found.mime is not None
        assert attachment_id is not None
        name = display_name(self._filename, found.mime)
        if found.kind == "image":
            done = await self._reencode(attachment_id, found.mime, name)
        else:
            done = Finished(
                name, found.mime, "file", self._size, self._hash.hexdigest(), None, None, None, 0
            )
        created = await self._parts.store.finish(
            attachment_id, self._session_id, done, session_limit=self._policy.session_bytes_per_day
        )
        if created is None:  # another upload of the session finished first and took the room
            raise self._quota_refusal(None)
        log.info("attachment_stored", attachment_id=attachment_id, type=done.mime, size=done.size)
        return Uploaded(attachment_id, self._session_id, done, created)

    async def _reencode(self, attachment_id: str, mime: str, name: str) -> Finished:
        parts, policy = self._parts, self._policy
        # CPU work, not I/O: a thread keeps the event loop turning while Pillow decodes, and the
        # limiter bounds how many images (and their pixels in memory) are processed at once.
        async with parts.image_threads:
            pieces = parts.blobs.read(attachment_id, "upload", 0, self._size, CHUNK_BYTES)
            work = partial(
                process_image,
                b"".join([piece async for piece in pieces]),
                mime,
                max_pixels=policy.max_image_pixels,
                thumb_pixels=policy.thumbnail_pixels,
            )
            try:
                processed: Processed = await trio.to_thread.run_sync(work)
            except ImageRefused as exc:
                error = BadRequest if exc.code == "image_unreadable" else PayloadTooLarge
                raise error(exc.message, code=exc.code, field=self._field) from None
            del work  # the upload's bytes: not kept while the results are written
        variants: tuple[tuple[BlobVariant, bytes], ...] = (
            ("original", processed.data),
            ("thumb", processed.thumbnail),
        )
        for variant, content in variants:
            writer = parts.blobs.writer(attachment_id, variant)
            await writer.write(content)
            await writer.close()
        await parts.blobs.delete_variant(attachment_id, "upload")
        return Finished(
            name,
            mime,
            "image",
            len(processed.data),
            hashlib.sha256(processed.data).hexdigest(),
            processed.width,
            processed.height,
            THUMB_TYPE,
            len(processed.thumbnail),
        )

    async def abandon(self) -> None:
        """Leave nothing of this file: its row first (nobody can find it), then its bytes. Not
        called once a message has taken it (chatd/files/n8n_chat_form.py makes sure)."""
        if self.id is None:
            return
        try:
            await self._parts.store.delete(self.id)
            if self._writer is not None:
                await self._writer.discard()
            await self._parts.blobs.delete([self.id])
        except Exception as exc:  # noqa: BLE001 -- the upload's own error is the one to report
            log.warning("attachment_cleanup_failed", attachment_id=self.id, error=str(exc))
