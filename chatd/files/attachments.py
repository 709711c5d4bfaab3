"""Attachments, the component: uploads in, files out, links signed, and its own counters.

Built once per process (chatd/process.py) with the store that fits attachments.storage;
`start` fetches the URL-signing key (from the settings, else the database) before HTTP serves.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import trio

from chatd.core.file_urls import FileLinks
from chatd.core.n8n_request import DeliveryFiles, FilePart
from chatd.core.storage import BlobStore, BlobVariant, StorageKind
from chatd.db.attachments import AttachmentStore, StoredFile
from chatd.db.blobs import PostgresBlobs
from chatd.db.pool import Pool
from chatd.errors import ClientError, DatabaseUnavailable
from chatd.files.disk import DiskBlobs
from chatd.files.n8n_chat_form import FormLimits, N8nChatForm, OpenSession, ReceivedForm
from chatd.files.receive import Uploaded, UploadParts, UploadPolicy
from chatd.files.upload import CLEANUP_SECONDS, Authorize, UploadReceiver
from chatd.settings import AttachmentSettings

log = structlog.get_logger(__name__)

FIRST_TRY_SECONDS = 2.0  # chatd starts serving after this even if the database is away
KEY_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class AttachmentStatistics:
    uploads: int  # files stored by this process
    refused: dict[str, int] = field(default_factory=dict)  # uploads refused here, by error code


def open_stores(pool: Pool, settings: AttachmentSettings) -> dict[StorageKind, BlobStore]:
    """The store new files go to first; both when a directory is set (files stored before a
    change of attachments.storage stay readable, and deletable, where they are)."""
    stores: dict[StorageKind, BlobStore] = {"postgres": PostgresBlobs(pool)}
    if settings.directory:
        stores["disk"] = DiskBlobs(Path(settings.directory))
    return stores


class Attachments:
    def __init__(self, pool: Pool, settings: AttachmentSettings, *, base_url: str = "") -> None:
        self.settings = settings
        self.store = AttachmentStore(pool)
        self.stores = open_stores(pool, settings)
        self.blobs = self.stores[settings.storage]  # where new files go
        self.links = FileLinks(settings.url_ttl_seconds, settings.url_secret.encode(), base_url)
        self._parts = UploadParts(
            self.store, self.blobs, trio.CapacityLimiter(settings.image_threads)
        )
        self._uploads = 0
        self._refused: Counter[str] = Counter()

    @property
    def disk(self) -> DiskBlobs | None:
        """The disk store, when attachments.directory is set (cleanup deletes its files)."""
        store = self.stores.get("disk")
        return store if isinstance(store, DiskBlobs) else None

    def statistics(self) -> AttachmentStatistics:
        return AttachmentStatistics(self._uploads, dict(self._refused))

    async def load_key(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The URL key from the database, unless attachments.url_secret sets it; retried while
        the database is away (chatd serves meanwhile: files answer 503 until it comes). Started
        once the first try has ended, or FIRST_TRY_SECONDS have passed."""
        with trio.move_on_after(FIRST_TRY_SECONDS):
            if await self._try_key():
                task_status.started()
                return
        task_status.started()
        while True:  # nothing to wait on but the database coming back: poll for it
            await trio.sleep(KEY_RETRY_SECONDS)
            if await self._try_key():
                return

    async def _try_key(self) -> bool:
        if not self.links.ready:
            try:
                self.links.configure(key=await self.store.url_key())
            except DatabaseUnavailable as exc:
                log.warning("file_url_key_unavailable", error=str(exc))
                return False
        return True

    def check_ready(self) -> None:
        if not self.links.ready:
            raise DatabaseUnavailable("the key that signs file URLs is not loaded yet")

    @property
    def policy(self) -> UploadPolicy:
        s = self.settings
        return UploadPolicy(
            s.max_file_bytes,
            s.session_bytes_per_day,
            s.max_total_bytes,
            s.types,
            s.max_image_pixels,
            s.thumbnail_pixels,
        )

    async def upload(
        self, body: AsyncIterator[bytes], boundary: bytes, authorize: Authorize
    ) -> Uploaded:
        self.check_ready()
        receiver = UploadReceiver(self._parts, self.policy, authorize)
        uploaded = await receiver.run(body, boundary)
        self._uploads += 1
        return uploaded

    async def receive_form(
        self,
        body: AsyncIterator[bytes],
        boundary: bytes,
        open_session: OpenSession,
        *,
        fields_bytes: int,
    ) -> ReceivedForm:
        """@n8n/chat's form with its files (chatd/files/n8n_chat_form.py); without
        attachments.enabled a file in it is refused (415)."""
        max_files = self.settings.max_files_per_message if self.settings.enabled else 0
        form = N8nChatForm(
            self._parts, self.policy, FormLimits(max_files, fields_bytes), open_session
        )
        try:
            if max_files:
                self.check_ready()
            received = await form.run(body, boundary)
        except ClientError as exc:
            if form.saw_files:
                self.refused(exc.code)
            raise
        self._uploads += len(received.files)
        return received

    async def discard_unsent(self, attachment_ids: Sequence[str]) -> None:
        """Files stored for a message that was not stored after all: gone, row and bytes
        (shielded: a client hanging up cleans up too). A file a message took stays."""
        if not attachment_ids:
            return
        with trio.move_on_after(CLEANUP_SECONDS) as cleanup:
            cleanup.shield = True
            try:
                deleted = await self.store.delete_unsent(attachment_ids)
                await self.blobs.delete(deleted)
            except Exception as exc:  # noqa: BLE001 -- the send's own error is the one to report
                log.warning(
                    "attachment_cleanup_failed", attachment_ids=list(attachment_ids), error=str(exc)
                )

    def refused(self, code: str) -> None:
        self._refused[code] += 1

    async def for_delivery(self, payload: Mapping[str, Any], mode: str) -> DeliveryFiles:
        """What a delivery to n8n needs for the message's files: the links to sign their URLs
        with, and in chat_trigger mode their bytes (a file deleted meanwhile is left out)."""
        message = payload.get("message")
        files = message.get("attachments") if isinstance(message, Mapping) else None
        if mode != "chat_trigger" or not files:
            return DeliveryFiles(self.links)
        parts = []
        for entry in files:
            stored = await self.find(entry["id"])
            if stored is not None:
                pieces = self.read(stored, "original", 0, stored.size)
                data = b"".join([piece async for piece in pieces])
                parts.append(FilePart(stored.name, stored.mime, data))
        return DeliveryFiles(self.links, tuple(parts), f"chatd-{secrets.token_hex(16)}")

    async def find(self, attachment_id: str) -> StoredFile | None:
        return await self.store.for_download(attachment_id)

    def read(
        self, stored: StoredFile, variant: BlobVariant, start: int, stop: int
    ) -> AsyncGenerator[bytes]:
        blobs = self.stores.get(stored.storage)
        if blobs is None:
            raise FileNotFoundError(f"{stored.id} is on disk, and attachments.directory is unset")
        return blobs.read(stored.id, variant, start, stop, stored.chunk_bytes)
