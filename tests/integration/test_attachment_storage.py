"""Both file stores (PostgreSQL, a directory) pass the same tests, alone and inside chatd; and
cleanup deletes a session's files with it (rows, chunks and files counted before and after)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from chatd.core.storage import CHUNK_BYTES, BlobStore
from chatd.core.tokens import new_id
from chatd.db.attachments import AttachmentStore
from chatd.db.blobs import PostgresBlobs
from chatd.db.cleanup import STALE_UPLOAD_SECONDS, run_cleanup
from chatd.db.pool import Pool
from chatd.db.shoppers import Shopper, erase_shopper
from chatd.files.disk import DiskBlobs
from chatd.settings import MaintenanceSettings
from tests.chat import new_session, send
from tests.conftest import RunningChatd, make_settings, start_chatd
from tests.files import attachment_counts, png, upload

STORAGES = ["postgres", "disk"]


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def blob_store(storage: str, pool: Pool, directory: Path) -> BlobStore:
    return PostgresBlobs(pool) if storage == "postgres" else DiskBlobs(directory)


async def a_row(pool: Pool, storage: str) -> str:
    """An attachment row to hang bytes on (chunks reference it)."""
    async with pool.connection() as conn:
        session_id = new_id()
        await conn.execute(
            "INSERT INTO chat_sessions (id, token_hash, expires_at)"
            " VALUES (%s, %s, now() + interval '1 day')",
            (session_id, b"x"),
        )
    attachment_id = new_id()
    await AttachmentStore(pool).start(attachment_id, session_id, storage, CHUNK_BYTES)  # type: ignore[arg-type]
    return attachment_id


async def read_all(store: BlobStore, attachment_id: str, start: int, stop: int) -> bytes:
    return b"".join(
        [p async for p in store.read(attachment_id, "original", start, stop, CHUNK_BYTES)]
    )


async def test_a_store_streams_in_and_out_in_any_range(
    storage: str, pool: Pool, tmp_path: Path
) -> None:
    store = blob_store(storage, pool, tmp_path)
    attachment_id = await a_row(pool, storage)
    data = os.urandom(3 * CHUNK_BYTES + 12_345)
    writer = store.writer(attachment_id, "original")
    for start in range(0, len(data), 70_001):  # pieces that do not line up with chunks
        await writer.write(data[start : start + 70_001])
    await writer.close()
    assert await read_all(store, attachment_id, 0, len(data)) == data
    for start, stop in ((0, 1), (CHUNK_BYTES - 3, CHUNK_BYTES + 3), (len(data) - 10, len(data)),
                        (CHUNK_BYTES, 3 * CHUNK_BYTES)):  # fmt: skip
        assert await read_all(store, attachment_id, start, stop) == data[start:stop]
    await store.delete([attachment_id])
    with pytest.raises(FileNotFoundError):
        await read_all(store, attachment_id, 0, 10)


async def test_a_discarded_write_leaves_nothing(storage: str, pool: Pool, tmp_path: Path) -> None:
    store = blob_store(storage, pool, tmp_path)
    attachment_id = await a_row(pool, storage)
    writer = store.writer(attachment_id, "original")
    await writer.write(os.urandom(CHUNK_BYTES + 5))
    await writer.discard()
    assert (await attachment_counts(pool))["chunks"] == 0
    assert files_in(tmp_path) == []


async def test_variants_are_apart(storage: str, pool: Pool, tmp_path: Path) -> None:
    store = blob_store(storage, pool, tmp_path)
    attachment_id = await a_row(pool, storage)
    for variant, content in (("original", b"big picture"), ("thumb", b"small")):
        writer = store.writer(attachment_id, variant)  # type: ignore[arg-type]
        await writer.write(content)
        await writer.close()
    await store.delete_variant(attachment_id, "thumb")
    assert await read_all(store, attachment_id, 0, 11) == b"big picture"
    with pytest.raises(FileNotFoundError):
        b"".join([p async for p in store.read(attachment_id, "thumb", 0, 5, CHUNK_BYTES)])


def test_disk_paths_are_ids_never_names(tmp_path: Path) -> None:
    disk = DiskBlobs(tmp_path)
    attachment_id = new_id()
    assert (
        disk.path(attachment_id, "original")
        == tmp_path / attachment_id[:2] / f"{attachment_id}.original"
    )
    for hostile in ("../../etc/passwd", "/etc/passwd", "a/b", ""):
        with pytest.raises(ValueError, match="not an attachment id"):
            disk.path(hostile, "original")


# --- inside chatd, and cleanup --------------------------------------------------------------------


@pytest.fixture
async def chatd_on(
    storage: str, nursery: trio.Nursery, database_url: str, pool: Pool, tmp_path: Path
) -> AsyncIterator[RunningChatd]:
    directory = tmp_path / "files"
    settings = make_settings(
        database_url, attachments={"storage": storage, "directory": str(directory)}
    )
    running = await start_chatd(nursery, settings, pool)
    yield running
    running.stop.set()


def files_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


async def test_chatd_stores_and_serves_from_either_store(
    storage: str, chatd_on: RunningChatd, tmp_path: Path
) -> None:
    data = os.urandom(600_000).hex().encode()  # 1.2 MB of text: five chunks
    async with chatd_on.client() as client:
        session = await new_session(client)
        response = await upload(client, session, data, "big.txt")
        assert response.status_code == 201
        body = response.json()
        assert body["sha256"] == hashlib.sha256(data).hexdigest()
        got = await client.get(body["url"])
        assert got.content == data
        part = await client.get(body["url"], headers={"Range": "bytes=262000-300000"})
        assert part.content == data[262000:300001]
        photo = await upload(client, session, png(), "p.png")
        assert (await client.get(photo.json()["thumbnailUrl"])).status_code == 200
    on_disk = files_in(tmp_path / "files")
    if storage == "disk":
        assert len(on_disk) == 3  # the text, the photo, its thumbnail (the upload's raw bytes gone)
        assert all(
            p.name.split(".")[0] in (body["attachmentId"], photo.json()["attachmentId"])
            for p in on_disk
        )
        assert (await attachment_counts(chatd_on.services.pool))["chunks"] == 0
    else:
        assert on_disk == []


async def test_cleanup_deletes_a_sessions_files_with_it(
    storage: str, chatd_on: RunningChatd, tmp_path: Path
) -> None:
    pool = chatd_on.services.pool
    async with chatd_on.client() as client:
        gone, kept = await new_session(client), await new_session(client)
        for session in (gone, kept):
            file = (await upload(client, session, png(), "p.png")).json()
            assert (
                await send(client, session, "", attachments=[file["attachmentId"]])
            ).status_code == 200
            await upload(client, session, b"never sent", "n.txt")
    async with pool.connection() as conn:
        await conn.execute("UPDATE chat_webhook_queue SET status = 'completed'")
        await conn.execute(
            # Expired, and last active before the hour the analytics have rolled up to.
            "UPDATE chat_sessions SET expires_at = now() - interval '1 hour',"
            " updated_at = now() - interval '2 hours' WHERE id = %s",
            (gone.id,),
        )
    before = await attachment_counts(pool)
    files_before = files_in(tmp_path / "files")
    assert before["attachments"] == 4
    summary = await run_cleanup(
        pool, MaintenanceSettings(), files=chatd_on.services.attachments.disk
    )
    assert summary.expired_sessions.sessions == 1
    assert summary.expired_sessions.attachments == 2
    after = await attachment_counts(pool)
    assert after["attachments"] == 2
    if storage == "disk":
        # Each session: a photo and its thumbnail, and a text file; one session's three go.
        assert len(files_before) == 6
        assert len(files_in(tmp_path / "files")) == 3
    else:
        assert after["chunks"] < before["chunks"]
        assert after["chunks"] > 0
    async with chatd_on.client() as client:  # the kept session's files still serve
        history = await client.get(f"/api/chat/messages/{kept.id}", headers=kept.auth)
        url = history.json()["messages"][0]["attachments"][0]["url"]
        assert (await client.get(url)).status_code == 200


async def test_cleanup_sweeps_unfinished_uploads_and_orphan_files(
    storage: str, chatd_on: RunningChatd, tmp_path: Path
) -> None:
    pool = chatd_on.services.pool
    disk = chatd_on.services.attachments.disk
    assert disk is not None
    stale = await a_row(pool, storage)
    writer = chatd_on.services.attachments.blobs.writer(stale, "original")
    await writer.write(b"half an upload")
    await writer.close()
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE chat_attachments SET created_at = now() - make_interval(secs => %s)",
            (STALE_UPLOAD_SECONDS + 60,),
        )
    orphan = disk.path(new_id(), "original")  # a file whose row is gone (a crash mid-cleanup)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"orphan")
    young = disk.path(new_id(), "original")  # as young as an upload in progress: kept
    young.parent.mkdir(parents=True, exist_ok=True)
    young.write_bytes(b"young")
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    summary = await run_cleanup(pool, MaintenanceSettings(), files=disk)
    assert summary.stale_uploads.attachments == 1
    assert await attachment_counts(pool) == {"attachments": 0, "chunks": 0}
    assert not orphan.exists()
    assert young.exists()
    remaining = [p for p in files_in(tmp_path / "files") if p != young]
    assert remaining == []


async def test_a_shoppers_deletion_takes_their_files_from_either_store(
    storage: str, chatd_on: RunningChatd, tmp_path: Path
) -> None:
    pool = chatd_on.services.pool
    async with chatd_on.client() as client:
        ann = await new_session(client, guestEmail="ann@shop.example")
        bob = await new_session(client, guestEmail="bob@shop.example")
        for session in (ann, bob):
            file = (await upload(client, session, png(), "p.png")).json()
            assert (
                await send(client, session, "", attachments=[file["attachmentId"]])
            ).status_code == 200
    before = await attachment_counts(pool)
    files_before = files_in(tmp_path / "files")
    erased = await erase_shopper(
        pool, Shopper(email="ann@shop.example"), "test", chatd_on.services.attachments.disk
    )
    assert erased.erasure.deleted["chat_attachments"] == 1
    assert (await attachment_counts(pool))["attachments"] == before["attachments"] - 1
    if storage == "disk":
        assert len(files_before) == 4  # each: a photo and its thumbnail
        assert len(files_in(tmp_path / "files")) == 2
    async with chatd_on.client() as client:  # bob's file still serves
        history = await client.get(f"/api/chat/messages/{bob.id}", headers=bob.auth)
        url = history.json()["messages"][0]["attachments"][0]["url"]
        assert (await client.get(url)).status_code == 200
