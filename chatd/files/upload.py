"""One upload, from the multipart body as it streams in to a ready chat_attachments row.

The body is parsed chunk by chunk (werkzeug's sans-IO multipart decoder, the one Quart itself
uses), never held whole: the form's `sessionId` field, then its one `file` part. When the file
part begins, the session is authorized and its quota checked; its first bytes decide its type
(chatd/core/sniff.py) before anything is stored; then each piece is counted against the limits,
hashed and written to the store as it comes. A refusal stops reading there. Images are then
re-encoded (chatd/files/images.py) in a worker thread, a few at a time, because decoding is CPU
work that would stall the event loop. Whatever goes wrong, a started upload leaves nothing
behind: its row and bytes are deleted (shielded, so a client hanging up cleans up too).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import structlog
import trio
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from chatd.core.filenames import display_name
from chatd.core.ids import parse_id
from chatd.core.sniff import SNIFF_BYTES, Sniffed, TextCheck, sniff
from chatd.core.storage import CHUNK_BYTES, BlobStore, BlobVariant, BlobWriter
from chatd.core.tokens import new_id
from chatd.db.attachments import AttachmentStore, Finished
from chatd.errors import (
    BadRequest,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    UnsupportedMediaType,
)
from chatd.files.images import THUMB_TYPE, ImageRefused, Processed, process_image

log = structlog.get_logger(__name__)

FIELD_BYTES = 256  # the sessionId field (a UUID)
MAX_PARTS = 4  # sessionId and file, with room to name what is wrong with a third
# What the decoder may hold unparsed: one piece fed (at most CHUNK_BYTES) and a part's headers.
DECODER_BYTES = 2 * CHUNK_BYTES
IDLE_SECONDS = 60.0  # an upload that sends nothing for this long is ended (408)
CLEANUP_SECONDS = 10.0
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


Authorize = Callable[[str], Awaitable[None]]  # raises (401, 410) unless the token opens it


class UploadReceiver:
    """Receives one upload: `await UploadReceiver(...).run(body, boundary)`."""

    def __init__(self, parts: UploadParts, policy: UploadPolicy, authorize: Authorize) -> None:
        self._parts = parts
        self._policy = policy
        self._authorize = authorize
        self._session_id: str | None = None
        self._field: bytearray | None = None  # the sessionId field, while it is read
        self._in_file = False
        self._file_seen = False
        self._filename = ""
        self._room = 0  # bytes this file may still have (file limit, the session's day)
        self._quota_bound = False  # the room is the session's day, not the file limit
        self._frees_in: float | None = None
        self._size = 0
        self._head = bytearray()
        self._sniffed: Sniffed | None = None
        self._text: TextCheck | None = None
        self._hash = hashlib.sha256()
        self._id: str | None = None  # once the row exists
        self._writer: BlobWriter | None = None

    async def run(self, body: AsyncIterator[bytes], boundary: bytes) -> Uploaded:
        decoder = MultipartDecoder(boundary, DECODER_BYTES, max_parts=MAX_PARTS)
        try:
            async with aclosing(_idle_limited(body)) as chunks:
                async for chunk in chunks:
                    for start in range(0, len(chunk), CHUNK_BYTES):
                        await self._feed(decoder, chunk[start : start + CHUNK_BYTES])
            await self._feed(decoder, None)
            if not self._file_seen:
                raise BadRequest("the form has no file part named 'file'", code="no_file")
            return await self._complete()
        except BaseException:
            with trio.move_on_after(CLEANUP_SECONDS) as cleanup:
                cleanup.shield = True
                await self._abandon()
            raise

    async def _feed(self, decoder: MultipartDecoder, chunk: bytes | None) -> None:
        try:
            decoder.receive_data(chunk)
            while not isinstance(event := decoder.next_event(), NeedData):
                if isinstance(event, Epilogue):
                    return
                await self._on_event(event)
        except RequestEntityTooLarge:
            raise BadRequest("the form is not what an upload sends", code="invalid_form") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"malformed multipart body: {exc}", code="invalid_form") from None

    async def _on_event(self, event: object) -> None:
        match event:
            case Field(name="sessionId") if self._session_id is None:
                self._field = bytearray()
            case File(name="file") if not self._file_seen:
                if self._session_id is None:
                    raise BadRequest(
                        "sessionId is required, before the file",
                        code="missing_field",
                        field="sessionId",
                    )
                await self._begin(event.filename)
            case File(name="file"):
                raise BadRequest("send one file per upload", code="too_many_files", field="file")
            case Field(name="sessionId"):
                raise BadRequest("sessionId is given twice", code="invalid_form", field="sessionId")
            case Field(name=name) | File(name=name):
                raise BadRequest(f"unknown form field {name!r}", code="unknown_field", field=name)
            case Data(data=data, more_data=more):
                if self._in_file:
                    await self._file_data(data)
                    if not more:
                        await self._file_end()
                elif self._field is not None:
                    self._field += data
                    if len(self._field) > FIELD_BYTES:
                        raise BadRequest(
                            "sessionId is too long", code="invalid_id", field="sessionId"
                        )
                    if not more:
                        text = self._field.decode(errors="replace").strip()
                        self._session_id = parse_id(text, "sessionId")
                        self._field = None

    async def _begin(self, filename: str) -> None:
        assert self._session_id is not None
        await self._authorize(self._session_id)
        policy = self._policy
        usage = await self._parts.store.usage(
            self._session_id, with_total=policy.max_total_bytes > 0
        )
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
        self._in_file = self._file_seen = True

    def _quota_refusal(self, frees_in: float | None) -> RateLimited:
        day = self._policy.session_bytes_per_day
        return RateLimited(
            f"this chat has uploaded its {day:,} bytes for the day; try again later",
            code="upload_quota",
            retry_after=max(1.0, frees_in or 60.0),
        )

    async def _file_data(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._room:
            if self._quota_bound:
                raise self._quota_refusal(self._frees_in)
            raise PayloadTooLarge(
                f"the file is larger than {self._policy.max_file_bytes:,} bytes",
                code="file_too_large",
                field="file",
            )
        if self._sniffed is None:
            self._head += data
            if len(self._head) >= SNIFF_BYTES:
                await self._decide()
            return
        await self._store(data)

    async def _decide(self) -> None:
        head, self._head = bytes(self._head), bytearray()
        found = sniff(head)
        if found.mime is None or found.mime not in self._policy.allowed:
            raise UnsupportedMediaType(
                f"its content is recognised as {found.label}, which is not accepted here; "
                f"send {self._accepted()}",
                code="file_type_not_allowed",
                field="file",
            )
        self._sniffed = found
        if found.text:
            self._text = TextCheck()
        self._id = new_id()
        parts = self._parts
        await parts.store.start(self._id, self._session_id or "", parts.blobs.kind, CHUNK_BYTES)
        variant: BlobVariant = "upload" if found.kind == "image" else "original"
        self._writer = parts.blobs.writer(self._id, variant)
        await self._store(head)

    async def _store(self, data: bytes) -> None:
        if self._text is not None and (problem := self._text.feed(data)) is not None:
            self._refuse_text(problem)
        self._hash.update(data)
        assert self._writer is not None
        await self._writer.write(data)

    def _refuse_text(self, problem: str) -> None:
        raise UnsupportedMediaType(
            f"this file holds {problem}: it is not plain text; send {self._accepted()}",
            code="file_type_not_allowed",
            field="file",
        )

    def _accepted(self) -> str:
        return ", ".join(LABELS[mime] for mime in LABELS if mime in self._policy.allowed)

    async def _file_end(self) -> None:
        self._in_file = False
        if self._size == 0:
            raise BadRequest("the file is empty", code="empty_file", field="file")
        if self._sniffed is None:
            await self._decide()
        if self._text is not None and (problem := self._text.finish()) is not None:
            self._refuse_text(problem)
        assert self._writer is not None
        await self._writer.close()
        self._writer = None

    async def _complete(self) -> Uploaded:
        found, attachment_id, session_id = self._sniffed, self._id, self._session_id
        assert found is not None
        assert found.mime is not None
        assert attachment_id is not None
        assert session_id is not None
        name = display_name(self._filename, found.mime)
        if found.kind == "image":
            done = await self._reencode(attachment_id, found.mime, name)
        else:
            done = Finished(
                name, found.mime, "file", self._size, self._hash.hexdigest(), None, None, None, 0
            )
        created = await self._parts.store.finish(
            attachment_id, session_id, done, session_limit=self._policy.session_bytes_per_day
        )
        if created is None:  # another upload of the session finished first and took the room
            raise self._quota_refusal(None)
        log.info("attachment_stored", attachment_id=attachment_id, type=done.mime, size=done.size)
        return Uploaded(attachment_id, session_id, done, created)

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
                raise error(exc.message, code=exc.code, field="file") from None
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

    async def _abandon(self) -> None:
        """Leave nothing of a failed upload: its row first (nobody can find it), then bytes."""
        if self._id is None:
            return
        try:
            await self._parts.store.delete(self._id)
            if self._writer is not None:
                await self._writer.discard()
            await self._parts.blobs.delete([self._id])
        except Exception as exc:  # noqa: BLE001 -- the upload's own error is the one to report
            log.warning("attachment_cleanup_failed", attachment_id=self._id, error=str(exc))


async def _idle_limited(body: AsyncIterator[bytes]) -> AsyncGenerator[bytes]:
    chunks = body.__aiter__()
    while True:
        with trio.move_on_after(IDLE_SECONDS) as idle:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
        if idle.cancelled_caught:
            raise RequestTimeout(
                f"the upload sent nothing for {IDLE_SECONDS:g}s", code="upload_timeout"
            )
        yield chunk
