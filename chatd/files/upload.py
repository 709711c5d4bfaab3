"""One upload, POST /api/chat/upload, from the multipart body as it streams in to a ready
chat_attachments row.

The body is parsed chunk by chunk (werkzeug's sans-IO multipart decoder, the one Quart itself
uses), never held whole: the form's `sessionId` field, then its one `file` part. When the file
part begins, the session is authorized; the file itself is received by chatd/files/receive.py
(quota, sniffing, limits, storage, re-encoding). Whatever goes wrong, a started upload leaves
nothing behind: its row and bytes are deleted (shielded, so a client hanging up cleans up too).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing

import trio
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from chatd.core.ids import parse_id
from chatd.core.storage import CHUNK_BYTES
from chatd.errors import BadRequest, RequestTimeout
from chatd.files.receive import FileReceiver, Uploaded, UploadParts, UploadPolicy

FIELD_BYTES = 256  # the sessionId field (a UUID)
MAX_PARTS = 4  # sessionId and file, with room to name what is wrong with a third
# What the decoder may hold unparsed: one piece fed (at most CHUNK_BYTES) and a part's headers.
DECODER_BYTES = 2 * CHUNK_BYTES
IDLE_SECONDS = 60.0  # an upload that sends nothing for this long is ended (408)
CLEANUP_SECONDS = 10.0

Authorize = Callable[[str], Awaitable[None]]  # raises (401, 410) unless the token opens it


class UploadReceiver:
    """Receives one upload: `await UploadReceiver(...).run(body, boundary)`."""

    def __init__(self, parts: UploadParts, policy: UploadPolicy, authorize: Authorize) -> None:
        self._parts = parts
        self._policy = policy
        self._authorize = authorize
        self._session_id: str | None = None
        self._field: bytearray | None = None  # the sessionId field, while it is read
        self._file: FileReceiver | None = None
        self._in_file = False

    async def run(self, body: AsyncIterator[bytes], boundary: bytes) -> Uploaded:
        decoder = MultipartDecoder(boundary, DECODER_BYTES, max_parts=MAX_PARTS)
        try:
            async with aclosing(idle_limited(body)) as chunks:
                async for chunk in chunks:
                    for start in range(0, len(chunk), CHUNK_BYTES):
                        await self._feed(decoder, chunk[start : start + CHUNK_BYTES])
            await self._feed(decoder, None)
            if self._file is None:
                raise BadRequest("the form has no file part named 'file'", code="no_file")
            return await self._file.complete()
        except BaseException:
            if self._file is not None:
                with trio.move_on_after(CLEANUP_SECONDS) as cleanup:
                    cleanup.shield = True
                    await self._file.abandon()
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
            case File(name="file") if self._file is None:
                if self._session_id is None:
                    raise BadRequest(
                        "sessionId is required, before the file",
                        code="missing_field",
                        field="sessionId",
                    )
                await self._authorize(self._session_id)
                self._file = FileReceiver(self._parts, self._policy, self._session_id, field="file")
                await self._file.begin(event.filename)
                self._in_file = True
            case File(name="file"):
                raise BadRequest("send one file per upload", code="too_many_files", field="file")
            case Field(name="sessionId"):
                raise BadRequest("sessionId is given twice", code="invalid_form", field="sessionId")
            case Field(name=name) | File(name=name):
                raise BadRequest(f"unknown form field {name!r}", code="unknown_field", field=name)
            case Data(data=data, more_data=more):
                if self._in_file:
                    assert self._file is not None
                    await self._file.data(data)
                    if not more:
                        self._in_file = False
                        await self._file.end()
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


async def idle_limited(body: AsyncIterator[bytes]) -> AsyncGenerator[bytes]:
    """`body`'s chunks; 408 when nothing comes for IDLE_SECONDS."""
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
