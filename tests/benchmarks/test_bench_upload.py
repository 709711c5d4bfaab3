"""Uploads: throughput into the default storage (PostgreSQL) against a bare hypercorn endpoint
writing the same bodies to disk, same run; and chatd's memory does not grow with file size.

- Throughput: UPLOADS sequential uploads of a 5 MB PDF (random bytes after its header: nothing to
  compress, as photos and PDFs are), the same multipart body to `chatd serve` (POST
  /api/chat/upload: parsed as it streams, sniffed, hashed, written to PostgreSQL in 256 KiB
  chunks, one statement each) and to tests/benchmarks/diskbare.py (hypercorn's Trio worker, the
  body written to a file, nothing else). Target: chatd >= 0.5 x the bare endpoint.
- Memory: chatd's RSS after a warm-up upload, then after BIG_UPLOADS files of 50 MB (limit raised
  for the test): streamed with backpressure, so it must not grow with the file (target: less
  than a fifth of one file).
Run: uv run pytest -m benchmark tests/benchmarks/test_bench_upload.py -s
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.benchmarks.diskbare import bare_upload_server
from tests.benchmarks.server import chatd_process
from tests.benchmarks.wsbare import rss_bytes

MB = 1_000_000
UPLOADS = 12
BIG = 50 * MB
BIG_UPLOADS = 3
BOUNDARY = "benchBoundary7d1c"


def multipart(session_id: str, data: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="sessionId"\r\n\r\n{session_id}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def pdf(size: int) -> bytes:
    return b"%PDF-1.7\n" + os.urandom(size - 9)


async def new_session(client: httpx.AsyncClient) -> tuple[str, str]:
    body = (await client.post("/api/chat/session", json={})).json()
    return body["sessionId"], body["sessionToken"]


async def timed_uploads(
    client: httpx.AsyncClient, path: str, bodies: list[bytes], token: str
) -> float:
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Authorization": f"Bearer {token}",
    }
    started = time.perf_counter()
    for body in bodies:
        response = await client.post(path, content=body, headers=headers)
        assert response.status_code == 201, response.text
    return time.perf_counter() - started


@pytest.mark.benchmark
@pytest.mark.timeout(600)
async def test_upload_throughput_against_a_bare_disk_endpoint(
    database_url: str, tmp_path: Path
) -> None:
    data = pdf(5 * MB)
    env = {"CHATD_ATTACHMENTS__SESSION_BYTES_PER_DAY": str(10**12)}
    async with (
        chatd_process(database_url, CHATD_QUEUE__DISPATCH="false", **env) as (url, _process),
        bare_upload_server(tmp_path) as bare_url,
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        httpx.AsyncClient(base_url=bare_url, timeout=60) as bare,
    ):
        session_id, token = await new_session(client)
        bodies = [multipart(session_id, data)] * UPLOADS
        await timed_uploads(bare, "/upload", bodies[:2], token)  # warm-up, both
        await timed_uploads(client, "/api/chat/upload", bodies[:2], token)
        bare_first = await timed_uploads(bare, "/upload", bodies, token)
        chatd_time = await timed_uploads(client, "/api/chat/upload", bodies, token)
        bare_again = await timed_uploads(bare, "/upload", bodies, token)
    total = len(bodies[0]) * UPLOADS / MB
    bare_rate = total / ((bare_first + bare_again) / 2)
    chatd_rate = total / chatd_time
    ratio = chatd_rate / bare_rate
    print(
        f"\nupload of {UPLOADS} x 5 MB, sequential:"
        f"\n  chatd (PostgreSQL storage)   {chatd_rate:8.1f} MB/s"
        f"\n  bare hypercorn, to disk      {bare_rate:8.1f} MB/s"
        f" ({total / bare_first:.1f} before, {total / bare_again:.1f} after)"
        f"\n  ratio                        {ratio:8.2f}   (target >= 0.5)"
    )
    assert ratio >= 0.5


@pytest.mark.benchmark
@pytest.mark.timeout(600)
async def test_memory_does_not_grow_with_file_size(database_url: str) -> None:
    env = {
        "CHATD_ATTACHMENTS__MAX_FILE_BYTES": str(60 * MB),
        "CHATD_ATTACHMENTS__SESSION_BYTES_PER_DAY": str(10**12),
    }
    async with (
        chatd_process(database_url, CHATD_QUEUE__DISPATCH="false", **env) as (url, process),
        httpx.AsyncClient(base_url=url, timeout=120) as client,
    ):
        session_id, token = await new_session(client)
        await timed_uploads(client, "/api/chat/upload", [multipart(session_id, pdf(MB))] * 2, token)
        before = rss_bytes(process.pid)
        big = multipart(session_id, pdf(BIG))
        seconds = await timed_uploads(client, "/api/chat/upload", [big] * BIG_UPLOADS, token)
        after = rss_bytes(process.pid)
        probe = await client.get(
            "/api/chat/session/" + session_id, headers={"Authorization": f"Bearer {token}"}
        )
        assert probe.status_code == 200
    growth = after - before
    print(
        f"\nchatd RSS: {before / MB:.1f} MB after a 1 MB upload, {after / MB:.1f} MB after"
        f" {BIG_UPLOADS} x {BIG / MB:.0f} MB ({BIG_UPLOADS * BIG / MB / seconds:.1f} MB/s);"
        f" growth {growth / MB:+.1f} MB (target < {BIG / 5 / MB:.0f} MB)"
    )
    assert growth < BIG / 5
