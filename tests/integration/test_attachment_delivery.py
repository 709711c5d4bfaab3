"""Files reach n8n (a real HTTP sink): URLs that work, signed at each attempt; in chat_trigger
mode the bytes themselves, as n8n's chat widget uploads them; a reply with links still works."""

from __future__ import annotations

import hashlib

import httpx
import trio
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder

from tests.chat import new_session, send
from tests.files import PDF, png, upload
from tests.integration.test_delivery import open_pipeline
from tests.sink import Output, Reply, Status


async def test_n8n_gets_working_links_with_name_type_size_and_hash(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(nursery, database_url)
    pipe.sink.queue(Status(503, headers={"Retry-After": "1"}))  # the retry signs anew
    pipe.sink.behave(Reply("Thanks, we will look at the photo"))
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        photo = (await upload(client, session, png(), "damage.png")).json()
        invoice = (await upload(client, session, PDF, "invoice.pdf")).json()
        await send(
            client, session, "parcel arrived broken",
            attachments=[photo["attachmentId"], invoice["attachmentId"]],
        )  # fmt: skip
        await pipe.wait_messages(session, 2)
    first, second = pipe.sink.requests[:2]
    files = second.json["message"]["attachments"]
    assert [f["id"] for f in files] == [photo["attachmentId"], invoice["attachmentId"]]
    assert {k: v for k, v in files[1].items() if k != "url"} == {
        "id": invoice["attachmentId"],
        "name": "invoice.pdf",
        "type": "application/pdf",
        "size": len(PDF),
        "kind": "file",
        "sha256": hashlib.sha256(PDF).hexdigest(),
    }
    assert first.json["message"]["attachments"][0]["id"] == files[0]["id"]
    async with httpx.AsyncClient(timeout=10) as n8n:  # what an HTTP Request node does
        for entry in files:
            fetched = await n8n.get(entry["url"])
            assert fetched.status_code == 200
            assert hashlib.sha256(fetched.content).hexdigest() == entry["sha256"]
            assert len(fetched.content) == entry["size"]
    pipe.chatd.stop.set()


async def test_a_message_without_files_reaches_n8n_as_before(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(nursery, database_url)
    pipe.sink.behave(Reply("hi"))
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        await send(client, session, "just text")
        await pipe.wait_messages(session, 2)
    assert "attachments" not in pipe.sink.requests[0].json["message"]
    pipe.chatd.stop.set()


async def test_the_chat_trigger_gets_the_files_as_its_widget_sends_them(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(nursery, database_url, n8n={"mode": "chat_trigger"})
    pipe.sink.behave(Output("I can see the dent"))
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        photo = (await upload(client, session, png(), "dent.png")).json()
        await send(client, session, "what do you see?", attachments=[photo["attachmentId"]])
        _user, bot = await pipe.wait_messages(session, 2)
        stored = (await client.get(photo["url"])).content
    assert bot["content"] == "I can see the dent"
    received = pipe.sink.requests[0]
    kind, _, boundary = received.headers["content-type"].partition("; boundary=")
    assert kind == "multipart/form-data"
    decoder = MultipartDecoder(boundary.encode())
    decoder.receive_data(received.body)
    decoder.receive_data(None)
    fields: dict[str, bytes] = {}
    files: list[list[object]] = []
    current: Field | File | None = None
    while not isinstance(event := decoder.next_event(), Epilogue):
        if isinstance(event, File):
            current = event
            files.append([event.name, event.filename, event.headers["content-type"], b""])
        elif isinstance(event, Field):
            current = event
            fields[event.name] = b""
        elif isinstance(event, Data) and isinstance(current, File):
            files[-1][3] += event.data  # type: ignore[operator]
        elif isinstance(event, Data) and current is not None:
            fields[current.name] += event.data
    assert fields["action"] == b"sendMessage"
    assert fields["sessionId"] == session.id.encode()
    assert fields["chatInput"] == b"what do you see?"
    assert files == [["files", "dent.png", "image/png", stored]]
    pipe.chatd.stop.set()
