"""Attachment bytes in PostgreSQL: chat_attachment_chunks, one row per CHUNK_BYTES of a variant.

Each chunk is its own short statement on a connection taken from the pool just for it: an
upload or a download is as slow as the shopper's network, and must not hold a connection (or a
transaction) while it waits for it. The bytes travel as binary parameters and results (no hex).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import LiteralString

import psycopg

from chatd.core.storage import CHUNK_BYTES, BlobVariant, StorageKind
from chatd.db.bridge import translate
from chatd.db.pool import Pool
from chatd.db.queries import query

READ_CHUNKS = 4  # chunks read per statement (1 MiB): few round trips, bounded memory


class PostgresBlobWriter:
    def __init__(self, pool: Pool, attachment_id: str, variant: BlobVariant) -> None:
        self._pool = pool
        self._id = attachment_id
        self._variant = variant
        self._buffer = bytearray()
        self._n = 0

    async def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= CHUNK_BYTES:
            await self._flush(bytes(self._buffer[:CHUNK_BYTES]))
            del self._buffer[:CHUNK_BYTES]

    async def close(self) -> None:
        if self._buffer or self._n == 0:  # an empty variant still has its one (empty) chunk
            await self._flush(bytes(self._buffer))
            self._buffer.clear()

    async def discard(self) -> None:
        self._buffer.clear()
        await _execute(
            self._pool, query("blob_delete_variant"), {"id": self._id, "variant": self._variant}
        )

    async def _flush(self, chunk: bytes) -> None:
        params = {"id": self._id, "variant": self._variant, "n": self._n, "data": chunk}
        await _execute(self._pool, query("blob_write_chunk"), params)
        self._n += 1


class PostgresBlobs:
    kind: StorageKind = "postgres"

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def writer(self, attachment_id: str, variant: BlobVariant) -> PostgresBlobWriter:
        return PostgresBlobWriter(self._pool, attachment_id, variant)

    async def read(
        self, attachment_id: str, variant: BlobVariant, start: int, stop: int, chunk_bytes: int
    ) -> AsyncGenerator[bytes]:
        if stop <= start:
            return
        first, last = start // chunk_bytes, (stop - 1) // chunk_bytes
        n = first
        while n <= last:
            batch_last = min(last, n + READ_CHUNKS - 1)
            params = {"id": attachment_id, "variant": variant, "first": n, "last": batch_last}
            try:
                async with self._pool.connection() as conn:
                    cur = conn.cursor(binary=True)
                    await cur.execute(query("blob_read_chunks"), params)
                    rows = await cur.fetchall()
            except psycopg.Error as exc:
                raise translate(exc) from exc
            if len(rows) != batch_last - n + 1:
                raise FileNotFoundError(f"attachment {attachment_id} {variant}: chunks missing")
            for row in rows:  # the connection is back in the pool before anything is sent
                offset = row["n"] * chunk_bytes
                data = bytes(row["data"])
                yield data[max(0, start - offset) : stop - offset]
            n = batch_last + 1

    async def delete(self, attachment_ids: Sequence[str]) -> None:
        await _execute(self._pool, query("blob_delete"), {"ids": list(attachment_ids)})

    async def delete_variant(self, attachment_id: str, variant: BlobVariant) -> None:
        await _execute(
            self._pool, query("blob_delete_variant"), {"id": attachment_id, "variant": variant}
        )


async def _execute(pool: Pool, sql: LiteralString, params: dict[str, object]) -> None:
    try:
        async with pool.connection() as conn:
            await conn.execute(sql, params)
    except psycopg.Error as exc:
        raise translate(exc) from exc
