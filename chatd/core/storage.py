"""The one small interface both file stores keep (PostgreSQL: chatd/db/blobs.py; a directory:
chatd/files/disk.py): bytes by attachment id and variant, written and read as streams.

A store holds bytes only; what they are (name, type, size, whose) is the chat_attachments row,
always in PostgreSQL. A variant is written once, through a writer, and is complete only after
`close`; a writer given up (`discard`) leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Literal, Protocol

StorageKind = Literal["postgres", "disk"]
BlobVariant = Literal["original", "thumb", "upload"]  # upload: an image as sent, until re-encoded
CHUNK_BYTES = 256 * 1024  # written and read in pieces of this size; Range maps onto them


class BlobWriter(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...

    async def discard(self) -> None: ...


class BlobStore(Protocol):
    kind: StorageKind

    def writer(self, attachment_id: str, variant: BlobVariant) -> BlobWriter: ...

    def read(
        self, attachment_id: str, variant: BlobVariant, start: int, stop: int, chunk_bytes: int
    ) -> AsyncGenerator[bytes]:
        """Bytes [start, stop) of a variant written in `chunk_bytes` pieces, in pieces."""
        ...

    async def delete(self, attachment_ids: Sequence[str]) -> None:
        """Every variant of these attachments (those already gone are no error)."""
        ...

    async def delete_variant(self, attachment_id: str, variant: BlobVariant) -> None: ...
