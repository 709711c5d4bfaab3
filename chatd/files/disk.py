"""Attachment bytes as files in a directory (attachments.storage = "disk"), for larger shops.

A file is named by the attachment's random id and variant (`ab/ab12…-….original`), never by
anything the client sent. It is written under a temporary name, flushed to disk and renamed
into place by `close`, so a crash mid-write leaves only a `.part` file, which the orphan sweep
removes. Cleanup deletes the chat_attachments rows first and the files after: a crash in between
leaves files nobody can reach (swept later), never a row whose file is missing.

Linux has no non-blocking disk I/O, so every file operation runs in Trio's worker threads
(trio.to_thread, the standard Trio way for files), a piece of at most CHUNK_BYTES at a time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import structlog
import trio

from chatd.core.ids import is_id
from chatd.core.storage import CHUNK_BYTES, BlobVariant, StorageKind

log = structlog.get_logger(__name__)

VARIANTS: tuple[BlobVariant, ...] = ("original", "thumb", "upload")
ORPHAN_MIN_AGE_SECONDS = 3600.0  # younger files may belong to an upload still in progress


class DiskBlobWriter:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._part = path.with_name(f"{path.name}.part-{secrets.token_hex(4)}")
        self._file: BinaryIO | None = None

    async def write(self, data: bytes) -> None:
        if self._file is None:
            self._file = await trio.to_thread.run_sync(self._open)
        for start in range(0, len(data), CHUNK_BYTES):
            await trio.to_thread.run_sync(self._file.write, data[start : start + CHUNK_BYTES])

    def _open(self) -> BinaryIO:
        self._part.parent.mkdir(parents=True, exist_ok=True)
        return self._part.open("xb")

    async def close(self) -> None:
        if self._file is None:
            self._file = await trio.to_thread.run_sync(self._open)
        await trio.to_thread.run_sync(self._finish, self._file)
        self._file = None

    def _finish(self, file: BinaryIO) -> None:
        with file:
            file.flush()
            os.fsync(file.fileno())  # on disk before the row says "ready"
        self._part.rename(self._path)

    async def discard(self) -> None:
        file, self._file = self._file, None
        await trio.to_thread.run_sync(_remove, self._part, file)


def _remove(path: Path, file: BinaryIO | None = None) -> None:
    if file is not None:
        file.close()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _remove_all(paths: list[Path]) -> None:
    for path in paths:
        _remove(path)


def _read_piece(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as file:
        file.seek(offset)
        return file.read(length)


class DiskBlobs:
    kind: StorageKind = "disk"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, attachment_id: str, variant: BlobVariant) -> Path:
        if not is_id(attachment_id):  # ids are chatd's own UUIDs: never a path of anyone's
            raise ValueError(f"not an attachment id: {attachment_id!r}")
        return self.directory / attachment_id[:2] / f"{attachment_id}.{variant}"

    def writer(self, attachment_id: str, variant: BlobVariant) -> DiskBlobWriter:
        return DiskBlobWriter(self.path(attachment_id, variant))

    async def read(
        self, attachment_id: str, variant: BlobVariant, start: int, stop: int, chunk_bytes: int
    ) -> AsyncGenerator[bytes]:
        path = self.path(attachment_id, variant)
        offset = start
        while offset < stop:
            length = min(CHUNK_BYTES, stop - offset)
            piece = await trio.to_thread.run_sync(_read_piece, path, offset, length)
            if len(piece) != length:
                raise FileNotFoundError(f"{path}: shorter than its row says")
            yield piece
            offset += length

    async def delete(self, attachment_ids: Sequence[str]) -> None:
        paths = [self.path(i, v) for i in attachment_ids for v in VARIANTS]
        await trio.to_thread.run_sync(_remove_all, paths)

    async def delete_variant(self, attachment_id: str, variant: BlobVariant) -> None:
        await trio.to_thread.run_sync(_remove, self.path(attachment_id, variant))

    async def sweep_orphans(
        self,
        existing: Callable[[list[str]], Awaitable[set[str]]],
        *,
        now: float | None = None,
        min_age: float = ORPHAN_MIN_AGE_SECONDS,
    ) -> int:
        """Remove files (and `.part` leftovers) older than `min_age` whose attachment has no
        row any more; `existing` says which of some ids still have one. How many went."""
        cutoff = (time.time() if now is None else now) - min_age
        candidates = await trio.to_thread.run_sync(self._old_files, cutoff)
        removed = 0
        for start in range(0, len(candidates), 1000):
            batch = candidates[start : start + 1000]
            alive = await existing(sorted({attachment_id for attachment_id, _ in batch}))
            gone = [path for attachment_id, path in batch if attachment_id not in alive]
            await trio.to_thread.run_sync(_remove_all, gone)
            removed += len(gone)
        if removed:
            log.info("attachment_orphans_swept", files=removed)
        return removed

    def _old_files(self, cutoff: float) -> list[tuple[str, Path]]:
        found: list[tuple[str, Path]] = []
        if not self.directory.is_dir():
            return found
        for shard in self.directory.iterdir():
            if not shard.is_dir():
                continue
            for path in shard.iterdir():
                attachment_id = path.name.split(".", 1)[0]
                with contextlib.suppress(FileNotFoundError):
                    if is_id(attachment_id) and path.stat().st_mtime < cutoff:
                        found.append((attachment_id, path))
        return found
