"""Attachments through a real chatd: upload, download by signed URL, messages that carry files.

Bad input of every kind gets a clear 4xx and stores nothing (rows and chunks counted).
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trio
from PIL import Image

from chatd.core.file_urls import signature
from chatd.db.pool import Pool
from tests.chat import Session, new_session, send
from tests.conftest import RunningChatd, make_settings, start_chatd
from tests.files import PDF, attachment_counts, jpeg_with_location, png, upload
from tests.ws import join, open_ws, receive, receive_type
from tests.ws import send as ws_send

NOTHING = {"attachments": 0, "chunks": 0}


@pytest.fixture
async def small(
    nursery: trio.Nursery, database_url: str, pool: Pool
) -> AsyncIterator[RunningChatd]:
    """chatd with small limits: 100 KB files, 250 KB a day per session, 2 files a message."""
    settings = make_settings(
        database_url,
        attachments={
            "max_file_bytes": 100_000,
            "session_bytes_per_day": 250_000,
            "max_files_per_message": 2,
            "max_image_pixels": 1_000_000,
        },
    )
    running = await start_chatd(nursery, settings, pool)
    yield running
    running.stop.set()


async def uploaded(client: httpx.AsyncClient, session: Session, data: bytes, name: str) -> dict:  # type: ignore[type-arg]
    response = await upload(client, session, data, name)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


# --- upload and download ---------------------------------------------------------------------------


async def test_a_photo_is_stored_without_its_location_upright_with_a_thumbnail(
    chatd: RunningChatd,
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        body = await uploaded(client, session, jpeg_with_location(80, 40), "IMG_0042.JPG")
        assert body["type"] == "image/jpeg"
        assert body["kind"] == "image"
        assert body["name"] == "IMG_0042.JPG"
        assert (body["width"], body["height"]) == (40, 80)
        assert body["url"].startswith(f"{chatd.url}/api/chat/files/{body['attachmentId']}?")
        original = await client.get(body["url"])  # no session token: the URL is the permission
        assert original.status_code == 200
        assert hashlib.sha256(original.content).hexdigest() == body["sha256"]
        assert len(original.content) == body["size"]
        image = Image.open(io.BytesIO(original.content))
        assert dict(image.getexif()) == {}
        assert b"ShopCam" not in original.content
        assert image.size == (40, 80)
        headers = original.headers
        assert headers["content-type"] == "image/jpeg"
        assert headers["content-disposition"].startswith('inline; filename="IMG_0042.JPG"')
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["content-security-policy"] == "default-src 'none'; sandbox"
        assert headers["accept-ranges"] == "bytes"
        max_age = int(headers["cache-control"].removeprefix("private, max-age="))
        assert 3500 < max_age <= 3600 + 300
        thumb = await client.get(body["thumbnailUrl"])
        assert thumb.status_code == 200
        assert thumb.headers["content-type"] == "image/webp"
        assert Image.open(io.BytesIO(thumb.content)).format == "WEBP"
        again = await client.get(body["url"], headers={"If-None-Match": headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""


async def test_a_pdf_is_a_download_and_text_a_utf8_download(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        pdf = await uploaded(client, session, PDF, "Rechnung März.pdf")
        text = await uploaded(client, session, "Bestellnummer 42 ✓\n".encode(), "note.txt")
        got = await client.get(pdf["url"])
        assert got.content == PDF
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["content-disposition"] == (
            "attachment; filename=\"Rechnung Marz.pdf\"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf"
        )
        got = await client.get(text["url"])
        assert got.headers["content-type"] == "text/plain; charset=utf-8"
        assert got.headers["content-disposition"].startswith("attachment;")
        assert "thumbnailUrl" not in pdf
        assert "width" not in text


async def test_a_png_named_pdf_is_a_png(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        response = await upload(
            client, session, png(), "invoice.pdf", content_type="application/pdf"
        )
        assert response.status_code == 201
        body = response.json()
        assert (body["type"], body["kind"], body["name"]) == (
            "image/png",
            "image",
            "invoice.pdf.png",
        )


@pytest.mark.parametrize(
    ("data", "name", "named"),
    [
        (b"<!doctype html><html><script>alert(document.cookie)</script>", "cat.png", "HTML"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "cat.png",
            "SVG",
        ),
        (b"PK\x03\x04" + b"\x00" * 100, "photos.png", "ZIP"),
        (b"MZ\x90\x00" + b"\x00" * 100, "setup.pdf", "Windows executable"),
        (b"ok text, then \x00\x01 binary", "notes.txt", "binary"),
        (b"text" * 300 + b"\x01 past the first kilobyte", "notes.txt", "U+0001"),
    ],
)
async def test_what_could_run_or_is_not_allowed_is_refused_by_name(
    chatd: RunningChatd, data: bytes, name: str, named: str
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        response = await upload(client, session, data, name, content_type="image/png")
        assert response.status_code == 415
        error = response.json()["error"]
        assert error["code"] == "file_type_not_allowed"
        assert named in error["message"]
    assert await attachment_counts(chatd.services.pool) == NOTHING


async def test_a_decompression_bomb_is_refused_before_it_is_decoded(small: RunningChatd) -> None:
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, "PNG")  # 400 MP in ~50 KB
    async with small.client() as client:
        session = await new_session(client)
        response = await upload(client, session, buffer.getvalue(), "bomb.png")
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "image_too_large"
    assert await attachment_counts(small.services.pool) == NOTHING


async def test_a_truncated_image_is_unreadable(chatd: RunningChatd) -> None:
    data = png(300, 300)
    async with chatd.client() as client:
        session = await new_session(client)
        response = await upload(client, session, data[: len(data) // 2], "cut.png")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "image_unreadable"
    assert await attachment_counts(chatd.services.pool) == NOTHING


async def test_hostile_names_are_only_shown_sanitised(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        # Raw bytes in the part's header, as a hostile client would send them (httpx, like a
        # browser, would percent-encode the control character).
        name = "../../etc/\x07pass\u202ewd" + "x" * 300 + ".txt"
        form = (
            f'--B\r\nContent-Disposition: form-data; name="sessionId"\r\n\r\n{session.id}\r\n'
            f'--B\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'
            "hello\r\n--B--\r\n"
        ).encode()
        response = await client.post(
            "/api/chat/upload",
            headers={**session.auth, "Content-Type": "multipart/form-data; boundary=B"},
            content=form,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["name"].startswith("passwdxxx")
        assert body["name"].endswith(".txt")
        assert len(body["name"]) == 120
        got = await client.get(body["url"])
        assert "../" not in got.headers["content-disposition"]
        assert "\x07" not in got.headers["content-disposition"]


# (name, how the request is made, status, code)
BAD_FORMS: list[tuple[str, dict, int, str]] = [  # type: ignore[type-arg]
    ("empty file", {"file": b""}, 400, "empty_file"),
    ("no file", {"fields_only": True}, 400, "no_file"),
    ("not multipart", {"json": True}, 415, "unsupported_media_type"),
    ("no token", {"no_token": True}, 401, "missing_token"),
    ("file before sessionId", {"file_first": True}, 400, "missing_field"),
    ("bad sessionId", {"session": "../x"}, 400, "invalid_id"),
    ("another field", {"extra": True}, 400, "unknown_field"),
    ("two files", {"two": True}, 400, "too_many_files"),
]


@pytest.mark.parametrize(("case", "how", "status", "code"), BAD_FORMS)
async def test_bad_forms_are_refused(
    chatd: RunningChatd,
    case: str,
    how: dict,
    status: int,
    code: str,  # type: ignore[type-arg]
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        headers = {} if how.get("no_token") else session.auth
        sid = how.get("session", session.id)
        if how.get("json"):
            response = await client.post(
                "/api/chat/upload", headers=headers, json={"sessionId": sid}
            )
        else:
            boundary = "XyZ"
            parts = []
            field = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="sessionId"\r\n\r\n{sid}\r\n'
            )
            file = (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
                    "Content-Type: text/plain\r\n\r\n"
                ).encode()
                + how.get("file", b"hello")
                + b"\r\n"
            )
            if how.get("file_first"):
                parts = [file, field.encode()]
            elif how.get("fields_only"):
                parts = [field.encode()]
            else:
                parts = [field.encode(), file]
            if how.get("extra"):
                parts.insert(
                    1,
                    f'--{boundary}\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n'.encode(),
                )
            if how.get("two"):
                parts.append(file)
            body = b"".join(parts) + f"--{boundary}--\r\n".encode()
            response = await client.post(
                "/api/chat/upload",
                headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
                content=body,
            )
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    assert await attachment_counts(chatd.services.pool) == NOTHING


async def test_another_sessions_token_does_not_upload(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        mine, theirs = await new_session(client), await new_session(client)
        response = await upload(client, Session(theirs.id, mine.token), b"hi", "a.txt")
        assert response.status_code == 401
    assert await attachment_counts(chatd.services.pool) == NOTHING


# --- limits ----------------------------------------------------------------------------------------


async def test_a_declared_oversize_body_is_refused_at_once(small: RunningChatd) -> None:
    async with small.client() as client:
        session = await new_session(client)
        response = await upload(client, session, b"x" * 200_000, "big.txt")
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "file_too_large"
    assert await attachment_counts(small.services.pool) == NOTHING


async def _raw_upload_head(
    url: str, session: Session, boundary: str
) -> tuple[trio.SocketStream, bytes]:
    host, port = urlsplit(url).hostname, urlsplit(url).port
    stream = await trio.open_tcp_stream(host or "", port or 80)
    head = (
        f"POST /api/chat/upload HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {session.token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    form = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="sessionId"\r\n\r\n{session.id}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
    ).encode()
    return stream, head + b"%x\r\n%s\r\n" % (len(form), form)


async def _answer(stream: trio.SocketStream) -> bytes:
    data = b""
    with trio.fail_after(10):
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some()
            if not chunk:
                break
            data += chunk
    return data


async def test_an_oversize_stream_is_refused_without_being_read_whole(small: RunningChatd) -> None:
    """Chunked, so no length is declared: chatd counts as it reads and answers 413 while the
    client still has most of the body unsent (it could not have been buffered whole)."""
    async with small.client() as client:
        session = await new_session(client)
    stream, start = await _raw_upload_head(small.url, session, "B0und")
    async with stream:
        await stream.send_all(start)
        piece = b"y" * 16_384
        sent = 0
        while sent < 150_000:  # past the 100 KB limit, far short of the 50 MB "file"
            await stream.send_all(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        answer = await _answer(stream)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"file_too_large" in answer or b"content-length" in answer.lower()
    assert await attachment_counts(small.services.pool) == NOTHING


async def test_the_daily_quota_refuses_with_retry_after(small: RunningChatd) -> None:
    async with small.client() as client:
        session = await new_session(client)
        for n in range(2):
            await uploaded(client, session, b"%d" % n + b"a" * 99_000, f"{n}.txt")
        response = await upload(client, session, b"b" * 60_000, "over.txt")
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "upload_quota"
        assert 86000 < int(response.headers["retry-after"]) <= 86400
        fits = await upload(client, session, b"c" * 40_000, "fits.txt")  # 238 KB of 250 KB
        assert fits.status_code == 201
        other = await new_session(client)  # another session has its own day
        assert (await upload(client, other, b"d" * 60_000, "d.txt")).status_code == 201


async def test_storage_full_is_a_503_with_retry_after(
    nursery: trio.Nursery, database_url: str, pool: Pool
) -> None:
    settings = make_settings(database_url, attachments={"max_total_bytes": 1000})
    running = await start_chatd(nursery, settings, pool)
    async with running.client() as client:
        session = await new_session(client)
        await uploaded(client, session, b"a" * 1500, "a.txt")
        response = await upload(client, session, b"b", "b.txt")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "storage_full"
        assert response.headers["retry-after"]
    running.stop.set()


async def test_uploads_off_is_a_404(nursery: trio.Nursery, database_url: str, pool: Pool) -> None:
    settings = make_settings(database_url, attachments={"enabled": "false"})
    running = await start_chatd(nursery, settings, pool)
    async with running.client() as client:
        session = await new_session(client)
        response = await upload(client, session, b"hi", "a.txt")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "attachments_disabled"
    running.stop.set()


# --- signed URLs -----------------------------------------------------------------------------------


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())).geturl()


async def test_expired_and_tampered_links_are_403_and_a_deleted_file_404(
    chatd: RunningChatd,
) -> None:
    key = chatd.services.attachments.links.key
    async with chatd.client() as client:
        session = await new_session(client)
        body = await uploaded(client, session, PDF, "a.pdf")
        file_id = body["attachmentId"]
        past = int(time.time()) - 10
        expired = _with(body["url"], exp=str(past), sig=signature(key, file_id, "original", past))
        response = await client.get(expired)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "url_expired"
        for tampered in (
            _with(body["url"], exp=str(int(time.time()) + 10**6)),
            _with(body["url"], v="thumb"),
            _with(body["url"], sig="A" * 43),
            body["url"].replace(file_id, file_id[:-1] + ("0" if file_id[-1] != "0" else "1")),
            body["url"].split("?")[0],
        ):
            response = await client.get(tampered)
            assert response.status_code == 403, tampered
            assert response.json()["error"]["code"] == "invalid_signature"
        await chatd.services.attachments.store.delete(file_id)
        response = await client.get(body["url"])
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "file_not_found"


async def test_ranges(chatd: RunningChatd) -> None:
    data = bytes(range(256)) * 2000  # 512 KB: three chunks
    text = data.hex().encode()[:600_000]
    async with chatd.client() as client:
        session = await new_session(client)
        body = await uploaded(client, session, text, "long.txt")
        size = len(text)
        for header, start, stop in (
            ("bytes=0-9", 0, 10),
            ("bytes=262140-262150", 262140, 262151),  # across a chunk boundary
            (f"bytes={size - 5}-", size - 5, size),
            ("bytes=-7", size - 7, size),
        ):
            response = await client.get(body["url"], headers={"Range": header})
            assert response.status_code == 206
            assert response.content == text[start:stop]
            assert response.headers["content-range"] == f"bytes {start}-{stop - 1}/{size}"
        response = await client.get(body["url"], headers={"Range": f"bytes={size}-"})
        assert response.status_code == 416
        assert response.headers["content-range"] == f"bytes */{size}"
        whole = await client.get(body["url"], headers={"Range": "bytes=0-1", "If-Range": '"other"'})
        assert whole.status_code == 200
        assert whole.content == text


# --- messages with files ---------------------------------------------------------------------------


async def test_a_message_carries_its_files_everywhere(chatd: RunningChatd) -> None:
    async with chatd.client() as client, open_ws(chatd.url) as ws:
        session = await new_session(client)
        await join(ws, session)
        photo = await uploaded(client, session, png(), "parcel.png")
        invoice = await uploaded(client, session, PDF, "invoice.pdf")
        sent = await send(
            client, session, "", attachments=[photo["attachmentId"], invoice["attachmentId"]]
        )
        assert sent.status_code == 200, sent.text
        event = await receive_type(ws, "new_message")
        files = event["message"]["attachments"]
        assert [f["id"] for f in files] == [photo["attachmentId"], invoice["attachmentId"]]
        assert files[0] | {"url": "", "thumbnailUrl": ""} == {
            "id": photo["attachmentId"], "name": "parcel.png", "type": "image/png",
            "size": photo["size"], "kind": "image", "width": 64, "height": 48,
            "url": "", "thumbnailUrl": "",
        }  # fmt: skip
        assert "thumbnailUrl" not in files[1]
        assert (await client.get(files[1]["url"])).content == PDF
        history = (
            await client.get(f"/api/chat/messages/{session.id}", headers=session.auth)
        ).json()
        assert history["messages"][0]["content"] == ""
        assert [f["id"] for f in history["messages"][0]["attachments"]] == [f["id"] for f in files]
        view = (await client.get(f"/api/chat/session/{session.id}", headers=session.auth)).json()
        assert view["messages"][0]["attachments"][0]["url"]
        plain = await send(client, session, "no files")
        assert plain.status_code == 200
        event = await receive_type(ws, "new_message")
        assert "attachments" not in event["message"]


async def test_a_websocket_send_takes_attachments(chatd: RunningChatd) -> None:
    async with chatd.client() as client, open_ws(chatd.url) as ws:
        session = await new_session(client)
        await join(ws, session)
        file = await uploaded(client, session, b"order 42", "o.txt")
        frame = {
            "type": "send_message",
            "content": "",
            "clientMessageId": "c1",
            "attachments": [file["attachmentId"]],
        }
        await ws_send(ws, frame)
        seen = {}
        while len(seen) < 2:  # the event and the ack, in either order
            event = await receive(ws)
            seen[event["type"]] = event
        assert seen["message_ack"]["clientMessageId"] == "c1"
        assert seen["new_message"]["message"]["attachments"][0]["id"] == file["attachmentId"]
        await ws_send(ws, {**frame, "clientMessageId": "c2"})
        refused = await receive_type(ws, "error")
        assert refused["code"] == "attachment_in_use"
        assert refused["clientMessageId"] == "c2"


async def test_someone_elses_or_a_used_attachment_is_refused(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        mine, theirs = await new_session(client), await new_session(client)
        their_file = await uploaded(client, theirs, b"theirs", "t.txt")
        my_file = await uploaded(client, mine, b"mine", "m.txt")
        response = await send(client, mine, "look", attachments=[their_file["attachmentId"]])
        assert response.status_code == 404
        assert response.json()["error"] == {
            "code": "attachment_not_found",
            "message": f"attachment {their_file['attachmentId']} was not uploaded in this session",
            "field": "attachments.0",
        }
        unknown = "8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77"
        response = await send(client, mine, "look", attachments=[my_file["attachmentId"], unknown])
        assert response.status_code == 404
        assert response.json()["error"]["field"] == "attachments.1"
        assert (
            await send(client, mine, "first", attachments=[my_file["attachmentId"]])
        ).status_code == 200
        response = await send(client, mine, "second", attachments=[my_file["attachmentId"]])
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "attachment_in_use"
        for ids, code in (
            ([my_file["attachmentId"]] * 2, "duplicate_attachment"),
            ([unknown[:-1] + str(n) for n in range(6)], "too_many_attachments"),  # 5 at most
            (["../etc"], "invalid_id"),
        ):
            response = await send(client, mine, "x", attachments=ids)
            assert response.status_code == 400
            assert response.json()["error"]["code"] == code
        empty = await send(client, mine, "  ")
        assert empty.json()["error"]["code"] == "empty_content"
        count = await client.get(f"/api/chat/messages/{mine.id}", headers=mine.auth)
        assert count.json()["pagination"]["total"] == 1


async def test_a_resend_is_idempotent_with_the_same_files_and_a_conflict_with_others(
    chatd: RunningChatd,
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        a = (await uploaded(client, session, b"a", "a.txt"))["attachmentId"]
        b = (await uploaded(client, session, b"b", "b.txt"))["attachmentId"]
        first = await send(client, session, "files", clientMessageId="k1", attachments=[a])
        again = await send(client, session, "files", clientMessageId="k1", attachments=[a])
        assert again.status_code == 200
        assert again.json()["messageId"] == first.json()["messageId"]
        other = await send(client, session, "files", clientMessageId="k1", attachments=[b])
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "client_message_id_conflict"
        fewer = await send(client, session, "files", clientMessageId="k1")
        assert fewer.status_code == 409


async def test_racing_sends_give_a_file_to_one_message(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        file_id = (await uploaded(client, session, b"once", "once.txt"))["attachmentId"]
        statuses: list[int] = []

        async def one(n: int) -> None:
            async with chatd.client() as own:  # its own connection: really concurrent
                response = await send(own, session, f"race {n}", attachments=[file_id])
                statuses.append(response.status_code)

        async with trio.open_nursery() as racing:
            for n in range(6):
                racing.start_soon(one, n)
        assert sorted(statuses) == [200, 409, 409, 409, 409, 409]
    async with chatd.services.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) AS n FROM chat_messages WHERE attachments IS NOT NULL"
            )
        ).fetchone()
    assert row is not None
    assert row["n"] == 1


async def test_a_file_still_uploading_cannot_be_sent_until_it_is_stored(
    small: RunningChatd,
) -> None:
    """A second upload racing a send: the file exists (its row, 'uploading') but is not ready;
    a send naming it is refused and stores nothing; once stored, it can be sent."""
    async with small.client() as client:
        session = await new_session(client)
        first = await uploaded(client, session, b"first", "first.txt")
        stream, start = await _raw_upload_head(small.url, session, "R4ce")
        async with stream:
            await stream.send_all(start + b"%x\r\n%s\r\n" % (2000, b"z" * 2000))
            pending = await _wait_for_uploading(small.services.pool)
            both = await send(client, session, "both", attachments=[first["attachmentId"], pending])
            assert both.status_code == 404
            assert both.json()["error"]["field"] == "attachments.1"
            only = await send(client, session, "first only", attachments=[first["attachmentId"]])
            assert only.status_code == 200
            end = b"\r\n--R4ce--\r\n"
            await stream.send_all(b"%x\r\n%s\r\n0\r\n\r\n" % (len(end), end))
            answer = await _answer(stream)
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        later = await send(client, session, "second", attachments=[pending])
        assert later.status_code == 200


async def _wait_for_uploading(pool: Pool) -> str:
    with trio.fail_after(10):
        while True:
            async with pool.connection() as conn:
                row = await (
                    await conn.execute("SELECT id FROM chat_attachments WHERE state = 'uploading'")
                ).fetchone()
            if row is not None:
                return str(row["id"])
            await trio.sleep(0.02)


async def test_metrics_count_uploads_refusals_and_bytes(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        body = await uploaded(client, session, png(), "p.png")
        await upload(client, session, b"<html>", "x.png")
        await upload(client, session, b"", "x.png")
        text = (await client.get("/metrics")).text
    assert "chatd_uploads_total 1.0" in text
    assert 'chatd_uploads_refused_total{reason="file_type_not_allowed"} 1.0' in text
    assert 'chatd_uploads_refused_total{reason="empty_file"} 1.0' in text
    stored = [line for line in text.splitlines() if line.startswith("chatd_attachment_bytes ")]
    assert stored
    assert float(stored[0].split()[1]) > body["size"]  # the original and its thumbnail
