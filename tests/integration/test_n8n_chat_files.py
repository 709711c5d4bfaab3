"""@n8n/chat's allowFileUploads against a real chatd and the sink: the widget's multipart form,
its files stored as attachments of the session and sent with the message as POST
/api/chat/send sends them; every refusal a clear 4xx that leaves no message and no file."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.chat import table_counts
from tests.files import PDF, attachment_counts, jpeg_with_location
from tests.integration.test_attachment_storage import files_in
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.integration.test_n8n_chat import PATH, history
from tests.sink import Reply

MAX_FILE = 100_000
JPEG = jpeg_with_location()
EXE = b"MZ\x90\x00" + b"\x00" * 100

Part = tuple[str, tuple[str | None, bytes | str] | tuple[str, bytes, str]]


@pytest.fixture
async def pipe(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(
        nursery,
        database_url,
        n8n_chat={"enabled": True, "reply_timeout_seconds": 5},
        chat={"max_message_length": 100, "rate_limit_max": 2},
        attachments={"max_file_bytes": MAX_FILE, "max_files_per_message": 2},
    )
    pipe.sink.behave(Reply("Got your files"))
    yield pipe
    pipe.chatd.stop.set()


def widget_form(
    session_id: str, text: str | None = "see attached", *files: tuple[str, bytes, str]
) -> list[Part]:
    """The parts in the order the widget appends them (chat.bundle.es.js: fields, then files)."""
    parts: list[Part] = [("action", (None, "sendMessage")), ("sessionId", (None, session_id))]
    if text is not None:
        parts.append(("chatInput", (None, text)))
    parts.append(("metadata", (None, '{"page": "/cart"}')))
    parts += [("files", file) for file in files]
    return parts


async def post_form(pipe: Pipeline, parts: list[Part], **kwargs: Any) -> httpx.Response:
    async with pipe.chatd.client() as client:
        return await client.post(PATH, files=parts, **kwargs)


async def stored(pipe: Pipeline) -> dict[str, int]:
    """What a refusal must leave as it was: messages, jobs, files and their bytes."""
    pool = pipe.chatd.services.pool
    counts = await table_counts(pool)
    return {
        "messages": counts["messages"],
        "jobs": counts["jobs"],
        **await attachment_counts(pool),
    }


async def test_a_jpeg_and_a_pdf_reach_n8n_as_attachments_of_the_message(pipe: Pipeline) -> None:
    widget = str(uuid.uuid4())
    files = [("photo.jpg", JPEG, "image/jpeg"), ("invoice.pdf", PDF, "application/pdf")]
    response = await post_form(pipe, widget_form(widget, "parcel arrived broken", *files))
    assert response.status_code == 200, response.text
    assert response.json() == {"output": "Got your files"}
    (request,) = pipe.sink.requests
    message = request.json["message"]
    assert message["content"] == "parcel arrived broken"
    assert request.json["sessionMetadata"] == {"page": "/cart"}
    sent = message["attachments"]
    assert [(f["name"], f["type"], f["kind"]) for f in sent] == [
        ("photo.jpg", "image/jpeg", "image"),
        ("invoice.pdf", "application/pdf", "file"),
    ]
    assert sent[1]["sha256"] == hashlib.sha256(PDF).hexdigest()
    async with httpx.AsyncClient(timeout=10) as n8n:  # what an HTTP Request node does
        for entry in sent:
            fetched = await n8n.get(entry["url"])
            assert fetched.status_code == 200
            assert hashlib.sha256(fetched.content).hexdigest() == entry["sha256"]
    async with pipe.chatd.services.pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT state, message_id FROM chat_attachments", prepare=False)
        ).fetchall()
    assert len(rows) == 2
    assert all(r["state"] == "ready" and r["message_id"] is not None for r in rows)
    data = await history(pipe, widget)
    human = data[0]["kwargs"]["content"]
    assert human.startswith("parcel arrived broken\n\n- [photo.jpg](http")
    assert "\n- [invoice.pdf](http" in human
    assert data[1]["kwargs"]["content"] == "Got your files"


async def test_files_without_text_are_a_message(pipe: Pipeline) -> None:
    widget = str(uuid.uuid4())
    for text in ("", None):
        response = await post_form(
            pipe, widget_form(widget, text, ("invoice.pdf", PDF, "application/pdf"))
        )
        assert response.status_code == 200, response.text
    contents = [r.json["message"]["content"] for r in pipe.sink.requests]
    assert contents == ["", ""]
    data = await history(pipe, widget)
    assert data[0]["kwargs"]["content"].startswith("- [invoice.pdf](http")


async def test_a_streaming_widget_sends_files_too(pipe: Pipeline) -> None:
    form = widget_form(str(uuid.uuid4()), "look", ("photo.jpg", JPEG, "image/jpeg"))
    response = await post_form(pipe, form, headers={"Accept": "text/plain"})
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert '"content":"Got your files"' in response.text
    assert len(pipe.sink.requests[0].json["message"]["attachments"]) == 1


def _big_pdf() -> bytes:
    return PDF + b"%" + b"x" * MAX_FILE


REFUSALS = [
    pytest.param([("setup.pdf", EXE, "application/pdf")], 415, "file_type_not_allowed", id="exe"),
    pytest.param([("a.pdf", _big_pdf(), "application/pdf")], 413, "file_too_large", id="big"),
    pytest.param([("a.pdf", PDF, "application/pdf")] * 3, 400, "too_many_files", id="three"),
    pytest.param(  # the first file was stored: it goes too
        [("a.pdf", PDF, "application/pdf"), ("b.pdf", EXE, "application/pdf")],
        415,
        "file_type_not_allowed",
        id="second-bad",
    ),
    pytest.param([("empty.pdf", b"", "application/pdf")], 400, "empty_file", id="empty"),
]


@pytest.mark.parametrize(("files", "status", "code"), REFUSALS)
async def test_refused_files_store_nothing(
    pipe: Pipeline, files: list[tuple[str, bytes, str]], status: int, code: str
) -> None:
    before = await stored(pipe)
    response = await post_form(pipe, widget_form(str(uuid.uuid4()), "hi", *files))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, "files")
    assert error["message"]
    assert await stored(pipe) == before
    assert pipe.sink.requests == []


async def test_bad_forms_are_refused_by_name_and_store_nothing(pipe: Pipeline) -> None:
    before = await stored(pipe)
    widget = str(uuid.uuid4())
    pdf = ("files", ("a.pdf", PDF, "application/pdf"))
    fields_after = [*widget_form(widget, None), pdf, ("chatInput", (None, "late"))]
    load = [("action", (None, "loadPreviousSession")), ("sessionId", (None, widget)), pdf]
    too_long = widget_form(widget, "x" * 101, ("a.pdf", PDF, "application/pdf"))
    other_name = [*widget_form(widget), ("upload", ("a.pdf", PDF, "application/pdf"))]
    cases = [
        (fields_after, 400, "invalid_form"),
        (load, 400, "invalid_form"),
        (too_long, 400, "content_too_long"),
        (other_name, 400, "unknown_field"),
    ]
    for parts, status, code in cases:
        response = await post_form(pipe, parts)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="action"\r\n\r\nsendMessage\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="sessionId"\r\n\r\n{widget}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.pdf"\r\n\r\n'
    ).encode()
    async with pipe.chatd.client() as client:
        cut = await client.post(  # the form ends in the middle of its file
            PATH,
            content=head + PDF,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        no_boundary = await client.post(
            PATH, content=b"x", headers={"Content-Type": "multipart/form-data"}
        )
    assert (cut.status_code, cut.json()["error"]["code"]) == (400, "invalid_form")
    assert (no_boundary.status_code, no_boundary.json()["error"]["code"]) == (400, "invalid_form")
    assert await stored(pipe) == before
    assert pipe.sink.requests == []


async def test_a_send_refused_after_its_files_were_stored_deletes_them(pipe: Pipeline) -> None:
    widget = str(uuid.uuid4())
    for text in ("one", "two"):  # chat.rate_limit_max = 2 messages a minute
        assert (await post_form(pipe, widget_form(widget, text))).status_code == 200
    before = await stored(pipe)
    refused = await post_form(pipe, widget_form(widget, "three", ("a.pdf", PDF, "application/pdf")))
    assert refused.status_code == 429, refused.text
    assert await stored(pipe) == before


async def test_without_attachments_files_are_refused(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(
        nursery, database_url, n8n_chat={"enabled": True}, attachments={"enabled": False}
    )
    before = await stored(pipe)
    form = widget_form(str(uuid.uuid4()), "hi", ("a.pdf", PDF, "application/pdf"))
    response = await post_form(pipe, form)
    assert response.status_code == 415
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == (
        "files_unsupported",
        "files",
    )
    assert await stored(pipe) == before
    pipe.chatd.stop.set()


async def test_files_in_a_directory_and_a_refusal_leaves_none_there(
    nursery: trio.Nursery, database_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "files"
    pipe = await open_pipeline(
        nursery,
        database_url,
        n8n_chat={"enabled": True},
        attachments={"storage": "disk", "directory": str(directory)},
    )
    pipe.sink.behave(Reply("ok"))
    pdf = ("invoice.pdf", PDF, "application/pdf")
    refused = await post_form(
        pipe, widget_form(str(uuid.uuid4()), "hi", pdf, ("b.pdf", EXE, "application/pdf"))
    )
    assert refused.status_code == 415
    assert files_in(directory) == []  # the first file was written, then deleted
    sent = await post_form(pipe, widget_form(str(uuid.uuid4()), "hi", pdf))
    assert sent.status_code == 200, sent.text
    (on_disk,) = files_in(directory)
    assert on_disk.read_bytes() == PDF
    (entry,) = pipe.sink.requests[0].json["message"]["attachments"]
    async with httpx.AsyncClient(timeout=10) as n8n:
        assert (await n8n.get(entry["url"])).content == PDF
    pipe.chatd.stop.set()
