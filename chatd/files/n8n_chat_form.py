"""@n8n/chat's multipart form (allowFileUploads): its text fields, then one or more `files`
parts, each streamed into an attachment of the widget's session as it comes.

The widget appends action, sessionId, chatInput and metadata before its files, so the session
can be opened (and the fields checked) when the first file begins, before a byte of it is
stored; a field after a file is refused. Each file takes the attachments pipeline
(chatd/files/receive.py: quota, sniffing, limits, storage, re-encoding). A refusal anywhere
deletes every file of the form (shielded, so a client hanging up cleans up too): the caller
gets either all of them or none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass

import trio
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from chatd.core.storage import CHUNK_BYTES
from chatd.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from chatd.files.receive import FileReceiver, Uploaded, UploadParts, UploadPolicy
from chatd.files.upload import CLEANUP_SECONDS, DECODER_BYTES, idle_limited

FILES = "files"  # the widget's name for every file part
FIELDS = ("action", "sessionId", "chatInput", "metadata")

# The form's fields so far → the id of the chatd session its files belong to (checked, opened).
OpenSession = Callable[[Mapping[str, str]], Awaitable[str]]


@dataclass(frozen=True)
class FormLimits:
    max_files: int  # 0: files are refused (attachments.enabled = false)
    fields_bytes: int  # all text fields together (server.max_body_bytes)


@dataclass(frozen=True)
class ReceivedForm:
    fields: dict[str, str]
    files: tuple[Uploaded, ...]  # stored and ready, in the form's order; no message has them


class N8nChatForm:
    """Receives one form: `await N8nChatForm(...).run(body, boundary)`."""

    def __init__(
        self,
        parts: UploadParts,
        policy: UploadPolicy,
        limits: FormLimits,
        open_session: OpenSession,
    ) -> None:
        self._parts = parts
        self._policy = policy
        self._limits = limits
        self._open_session = open_session
        self._fields: dict[str, str] = {}
        self._field: tuple[str, bytearray] | None = None  # the field being read
        self._field_bytes = 0
        self._session_id: str | None = None
        self._files: list[FileReceiver] = []
        self._in_file = False
        self._done: list[Uploaded] = []

    @property
    def saw_files(self) -> bool:
        return bool(self._files)

    async def run(self, body: AsyncIterator[bytes], boundary: bytes) -> ReceivedForm:
        parts = self._limits.max_files + len(FIELDS) + 1  # room to name a part too many
        decoder = MultipartDecoder(boundary, DECODER_BYTES, max_parts=parts)
        try:
            async with aclosing(idle_limited(body)) as chunks:
                async for chunk in chunks:
                    for start in range(0, len(chunk), CHUNK_BYTES):
                        await self._feed(decoder, chunk[start : start + CHUNK_BYTES])
            await self._feed(decoder, None)
        except RequestEntityTooLarge:  # the body's own limit (chatd/http/streaming.py)
            await self._abandon()
            raise self._too_large() from None
        except BaseException:
            await self._abandon()
            raise
        return ReceivedForm(dict(self._fields), tuple(self._done))

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            "the form is larger than its files and fields may be", code="form_too_large"
        )

    async def _abandon(self) -> None:
        with trio.move_on_after(CLEANUP_SECONDS) as cleanup:
            cleanup.shield = True
            for file in self._files:
                await file.abandon()

    async def _feed(self, decoder: MultipartDecoder, chunk: bytes | None) -> None:
        try:
            decoder.receive_data(chunk)
            while not isinstance(event := decoder.next_event(), NeedData):
                if isinstance(event, Epilogue):
                    return
                await self._on_event(event)
        except RequestEntityTooLarge:
            raise BadRequest(
                f"the form has more parts than its {len(FIELDS)} fields and"
                f" {self._limits.max_files} files",
                code="invalid_form",
            ) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"malformed multipart body: {exc}", code="invalid_form") from None

    async def _on_event(self, event: object) -> None:
        match event:
            case File(name="files", filename=filename):
                await self._begin_file(filename)
            case File(name=name):
                raise BadRequest(
                    f"unknown file part {name!r}; files go in parts named 'files'",
                    code="unknown_field",
                    field=name,
                )
            case Field(name=name):
                if self._files:
                    raise BadRequest(
                        "send the form's fields before its files", code="invalid_form", field=name
                    )
                if name in self._fields:
                    raise BadRequest(f"{name} is given twice", code="invalid_form", field=name)
                self._field = (name, bytearray())
            case Data(data=data, more_data=more):
                if self._in_file:
                    await self._files[-1].data(data)
                    if not more:
                        await self._end_file()
                elif self._field is not None:
                    self._field_data(data, more)

    def _field_data(self, data: bytes, more: bool) -> None:
        assert self._field is not None
        name, value = self._field
        value += data
        self._field_bytes += len(data)
        if self._field_bytes > self._limits.fields_bytes:
            raise PayloadTooLarge(
                f"the form's fields are larger than {self._limits.fields_bytes:,} bytes",
                code="form_too_large",
                field=name,
            )
        if not more:
            self._fields[name] = value.decode()  # not UTF-8: a 400 (invalid_form)
            self._field = None

    async def _begin_file(self, filename: str) -> None:
        limit = self._limits.max_files
        if limit == 0:
            raise UnsupportedMediaType(
                "this chat does not take files (attachments.enabled = false)",
                code="files_unsupported",
                field=FILES,
            )
        if len(self._files) >= limit:
            raise BadRequest(
                f"at most {limit} files per message", code="too_many_files", field=FILES
            )
        if self._session_id is None:
            self._session_id = await self._open_session(self._fields)
        file = FileReceiver(self._parts, self._policy, self._session_id, field=FILES, named=True)
        self._files.append(file)
        await file.begin(filename)
        self._in_file = True

    async def _end_file(self) -> None:
        self._in_file = False
        file = self._files[-1]
        await file.end()
        # Finished now, not after the form: the next file's quota counts this one's bytes.
        self._done.append(await file.complete())
