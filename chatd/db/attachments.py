"""The chat_attachments aggregate: an upload's row from start to ready, what a download needs,
the URL-signing key, and what cleanup removes. The bytes are a BlobStore's (chatd/core/storage.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

import psycopg

from chatd.core.sniff import Kind
from chatd.core.storage import StorageKind
from chatd.db.bridge import translate
from chatd.db.pool import Pool
from chatd.db.queries import query

DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class Usage:
    session_bytes: int  # stored by the session within the last day
    frees_in: float | None  # seconds until the oldest of them leaves the day
    total_bytes: int | None  # everything stored (asked only when a total limit is set)


@dataclass(frozen=True)
class Finished:
    """What an upload became: the row as it is now ready."""

    name: str
    mime: str
    kind: Kind
    size: int
    sha256: str
    width: int | None
    height: int | None
    thumb_type: str | None
    thumb_size: int


@dataclass(frozen=True)
class StoredFile:
    """A ready attachment, as a download needs it."""

    id: str
    storage: StorageKind
    chunk_bytes: int
    name: str
    mime: str
    kind: Kind
    size: int
    sha256: str
    thumb_type: str | None
    thumb_size: int


class AttachmentStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def url_key(self) -> bytes:
        """The key that signs file URLs, made once for the whole cluster."""
        for _ in range(3):
            row = await self._one(query("file_url_key"), {"candidate": secrets.token_bytes(32)})
            if row is not None:
                return bytes(row["value"])
        raise AssertionError("file_url_key found no key three times, yet one was inserted")

    async def usage(self, session_id: str, *, with_total: bool) -> Usage:
        row = await self._one(
            query("upload_usage"),
            {"session_id": session_id, "window_seconds": DAY_SECONDS, "with_total": with_total},
        )
        assert row is not None  # an aggregate always answers
        return Usage(int(row["session_bytes"]), row["window_frees_in"], row["total_bytes"])

    async def start(
        self, attachment_id: str, session_id: str, storage: StorageKind, chunk_bytes: int
    ) -> None:
        params = {
            "id": attachment_id,
            "session_id": session_id,
            "storage": storage,
            "chunk_bytes": chunk_bytes,
        }
        await self._execute(query("start_upload"), params)

    async def finish(
        self, attachment_id: str, session_id: str, done: Finished, *, session_limit: int
    ) -> datetime | None:
        """Ready, with the session's uploads finishing one at a time so the quota is exact;
        None if the file would take the session past `session_limit` bytes in a day."""
        params: dict[str, Any] = {
            "id": attachment_id,
            "session_id": session_id,
            "name": done.name,
            "type": done.mime,
            "kind": done.kind,
            "size": done.size,
            "sha256": done.sha256,
            "width": done.width,
            "height": done.height,
            "thumb_type": done.thumb_type,
            "thumb_size": done.thumb_size,
            "window_seconds": DAY_SECONDS,
            "session_limit": session_limit,
        }
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await conn.execute(query("lock_session_for_upload"), params)
                row = await (await conn.execute(query("finish_upload"), params)).fetchone()
        except psycopg.Error as exc:
            raise translate(exc) from exc
        return None if row is None else row["created_at"]

    async def delete(self, attachment_id: str) -> None:
        await self._execute(query("delete_attachment"), {"id": attachment_id})

    async def delete_unsent(self, attachment_ids: Sequence[str]) -> list[str]:
        """Delete those of these files no message has taken; the ids deleted."""
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    query("delete_unsent_attachments"), {"ids": list(attachment_ids)}
                )
                return [row["id"] for row in await cur.fetchall()]
        except psycopg.Error as exc:
            raise translate(exc) from exc

    async def for_download(self, attachment_id: str) -> StoredFile | None:
        row = await self._one(query("attachment_for_download"), {"id": attachment_id})
        if row is None:
            return None
        return StoredFile(
            row["id"],
            row["storage"],
            row["chunk_bytes"],
            row["name"],
            row["type"],
            row["kind"],
            row["size"],
            row["sha256"],
            row["thumb_type"],
            row["thumb_size"],
        )

    async def existing(self, ids: Sequence[str]) -> set[str]:
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(query("existing_attachments"), {"ids": list(ids)})
                return {row["id"] for row in await cur.fetchall()}
        except psycopg.Error as exc:
            raise translate(exc) from exc

    async def _one(self, sql: LiteralString, params: dict[str, Any]) -> dict[str, Any] | None:
        try:
            async with self._pool.connection() as conn:
                return await (await conn.execute(sql, params)).fetchone()
        except psycopg.Error as exc:
            raise translate(exc) from exc

    async def _execute(self, sql: LiteralString, params: dict[str, Any]) -> None:
        try:
            async with self._pool.connection() as conn:
                await conn.execute(sql, params)
        except psycopg.Error as exc:
            raise translate(exc) from exc
