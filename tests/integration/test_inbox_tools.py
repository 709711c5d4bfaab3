"""The inbox's tools against a real chatd, PostgreSQL and n8n sink: internal notes (staff see
them live, also on another process; the shopper's socket, history and n8n never do), canned
responses (admins manage them, agents read them), an agent's files, and the audit trail in the
admin transcript. Every bad input: a 4xx naming the problem, nothing changed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from chatd.core.staff import Role
from tests.chat import Session, new_session, send, table_counts
from tests.conftest import make_settings, start_chatd
from tests.files import png
from tests.integration.test_delivery import Pipeline, _pool, open_pipeline
from tests.sink import Reply
from tests.staff import Staff, add_agent, sign_in
from tests.ws import join, open_ws, receive, receive_type

UNKNOWN = "0b6e2c1f-9a3d-4e5b-8c7f-1d2e3f4a5b6c"
ADMIN_TOKEN = "a" * 32


@pytest.fixture
async def pipe(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(
        nursery,
        database_url,
        admin={"token": ADMIN_TOKEN},
        n8n_chat={"enabled": True, "reply_timeout_seconds": 5},
        chat={"max_message_length": 200},
    )
    pipe.sink.behave(Reply("Bot here."))
    yield pipe
    pipe.chatd.stop.set()


async def staff(pipe: Pipeline, name: str, role: Role = Role.AGENT) -> Staff:
    agent = await add_agent(pipe.chatd.services.pool, name, role)
    return await sign_in(pipe.chatd.client(), agent)


async def count(pipe: Pipeline, table: str) -> int:
    assert table in ("chat_notes", "chat_canned_responses", "chat_attachments", "chat_audit")
    async with pipe.chatd.services.pool.connection() as conn:
        row = await (await conn.execute(f"SELECT count(*) AS n FROM {table}")).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row["n"])


async def note(anna: Staff, chat: Session, content: str) -> httpx.Response:
    return await anna.post(f"/api/inbox/conversations/{chat.id}/notes", {"content": content})


# --- internal notes ----------------------------------------------------------------------------


async def test_a_note_reaches_staff_live_and_never_the_shopper(pipe: Pipeline) -> None:
    anna = await staff(pipe, "Anna")
    cookie = f"chatd_staff={anna.client.cookies['chatd_staff']}"
    async with (
        pipe.chatd.client() as shopper,
        open_ws(pipe.chatd.url, path="/api/inbox/ws", cookie=cookie) as inbox,
    ):
        chat = await new_session(shopper)
        await send(shopper, chat, "hello")
        await pipe.wait_messages(chat, 2)
        calls = len(pipe.sink.requests)
        async with open_ws(pipe.chatd.url) as widget:
            await join(widget, chat, last_seq=2)  # has seen the hello and the bot's answer
            written = await note(anna, chat, "VIP customer, be nice")
            assert written.status_code == 201, written.text
            body = written.json()["note"]
            assert (body["agentName"], body["content"]) == ("Anna", "VIP customer, be nice")
            event = await receive_type(inbox, "note")
            assert event["sessionId"] == chat.id
            assert event["note"] == body
            # The shopper's socket hears nothing of it: the next thing it gets is the next reply.
            await anna.post(f"/api/inbox/conversations/{chat.id}/take")
            while (frame := await receive(widget))["type"] != "new_message":
                assert "note" not in frame, frame
            assert frame["message"]["content"] == "Anna joined the chat"
        history = await pipe.messages(chat)
        assert all("VIP" not in m["content"] for m in history)
        assert len(pipe.sink.requests) == calls  # n8n was not told
        listed = (await anna.client.get(f"/api/inbox/conversations/{chat.id}/notes")).json()
        assert [n["content"] for n in listed["notes"]] == ["VIP customer, be nice"]
        # The shopper's token opens nothing of the inbox's.
        assert (
            await shopper.get(f"/api/inbox/conversations/{chat.id}/notes", headers=chat.auth)
        ).status_code == 401
    await anna.client.aclose()


async def test_a_note_never_shows_in_n8n_chat_history(pipe: Pipeline) -> None:
    anna = await staff(pipe, "Anna")
    widget = str(uuid.uuid4())
    async with pipe.chatd.client() as client:
        sent = await client.post(
            "/api/n8n-chat", json={"action": "sendMessage", "sessionId": widget, "chatInput": "hi"}
        )
        assert sent.status_code == 200, sent.text
        session_id = pipe.sink.requests[-1].json["sessionId"]
        written = await anna.post(
            f"/api/inbox/conversations/{session_id}/notes", {"content": "secret staff note"}
        )
        assert written.status_code == 201, written.text
        loaded = await client.post(
            "/api/n8n-chat", json={"action": "loadPreviousSession", "sessionId": widget}
        )
    contents = [d["kwargs"]["content"] for d in loaded.json()["data"]]
    assert contents == ["hi", "Bot here."]
    await anna.client.aclose()


async def test_a_note_reaches_an_agent_on_another_process(
    nursery: trio.Nursery, pipe: Pipeline, database_url: str
) -> None:
    pool_b = await nursery.start(_pool, database_url)
    b = await start_chatd(nursery, make_settings(database_url), pool_b)
    anna = await staff(pipe, "Anna")  # on process A
    bo = await sign_in(b.client(), await add_agent(pipe.chatd.services.pool, "Bo"))
    cookie = f"chatd_staff={bo.client.cookies['chatd_staff']}"
    async with (
        pipe.chatd.client() as shopper,
        open_ws(b.url, path="/api/inbox/ws", cookie=cookie) as inbox_b,
    ):
        chat = await new_session(shopper)
        async with open_ws(b.url) as widget_b:
            await join(widget_b, chat)
            assert (await note(anna, chat, "seen across processes")).status_code == 201
            event = await receive_type(inbox_b, "note")
            assert event["note"]["content"] == "seen across processes"
            with trio.move_on_after(0.5):
                frame = await receive(widget_b)
                assert frame["type"] == "heartbeat", frame  # nothing else may come
    await anna.client.aclose()
    await bo.client.aclose()
    b.stop.set()


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/api/inbox/conversations/{chat}/notes", {"content": " "}, 400, "empty_content"),
        ("/api/inbox/conversations/{chat}/notes", {"content": "x" * 201}, 400, "content_too_long"),
        ("/api/inbox/conversations/{chat}/notes", {}, 400, "missing_field"),
        ("/api/inbox/conversations/{chat}/notes", {"content": "a", "x": 1}, 400, "unknown_field"),
        ("/api/inbox/conversations/{chat}/notes", {"content": 5}, 400, None),
        ("/api/inbox/conversations/nope/notes", {"content": "a"}, 400, "invalid_id"),
        (f"/api/inbox/conversations/{UNKNOWN}/notes", {"content": "a"}, 404, None),
    ],
)
async def test_bad_notes_are_refused_and_change_nothing(
    pipe: Pipeline, path: str, body: Any, status: int, code: str | None
) -> None:
    anna = await staff(pipe, "Anna")
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper)
    response = await anna.post(path.replace("{chat}", chat.id), body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    assert await count(pipe, "chat_notes") == 0
    await anna.client.aclose()


async def test_notes_need_a_sign_in_csrf_and_an_open_conversation(pipe: Pipeline) -> None:
    anna = await staff(pipe, "Anna")
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper)
        path = f"/api/inbox/conversations/{chat.id}/notes"
        assert (await shopper.post(path, json={"content": "a"})).status_code == 401
        assert (
            await shopper.post(path, json={"content": "a"}, headers=chat.auth)
        ).status_code == 401
        no_csrf = await anna.client.post(path, json={"content": "a"})
        assert no_csrf.status_code == 403
        assert no_csrf.json()["error"]["code"] == "csrf_failed"
        wrong = await anna.client.post(path, json={"content": "a"}, headers={"X-CSRF-Token": "x"})
        assert wrong.status_code == 403
        assert (await anna.post(f"/api/inbox/conversations/{chat.id}/close")).status_code == 200
        closed = await note(anna, chat, "too late")
        assert closed.status_code == 409
        assert closed.json()["error"]["code"] == "conversation_closed"
    assert await count(pipe, "chat_notes") == 0
    await anna.client.aclose()


# --- canned responses --------------------------------------------------------------------------

CANNED = "/api/admin/canned-responses"


async def test_admins_manage_canned_responses_agents_read_them(pipe: Pipeline) -> None:
    dee = await staff(pipe, "Dee", Role.ADMIN)
    cai = await staff(pipe, "Cai")
    added = await dee.post(
        CANNED, {"shortcut": "refund", "title": "Refunds", "content": "Refunds take 5 days."}
    )
    assert added.status_code == 201, added.text
    canned = added.json()["cannedResponse"]
    assert canned["shortcut"] == "refund"
    token = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with pipe.chatd.client() as automation:
        by_token = await automation.post(
            CANNED, headers=token, json={"shortcut": "hi", "title": "Hello", "content": "Hi!"}
        )
        assert by_token.status_code == 201, by_token.text
        changed = await automation.put(
            f"{CANNED}/{canned['id']}",
            headers=token,
            json={"shortcut": "refund-eu", "title": "Refunds (EU)", "content": "14 days."},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["cannedResponse"]["shortcut"] == "refund-eu"
        listed = (await automation.get(CANNED, headers=token)).json()["cannedResponses"]
    assert [c["shortcut"] for c in listed] == ["hi", "refund-eu"]
    seen = (await cai.client.get("/api/inbox/canned-responses")).json()["cannedResponses"]
    assert [(c["shortcut"], c["content"]) for c in seen] == [
        ("hi", "Hi!"),
        ("refund-eu", "14 days."),
    ]
    # An agent may read them in the inbox, never change them.
    for method, path, body in [
        ("GET", CANNED, None),
        ("POST", CANNED, {"shortcut": "x", "title": "x", "content": "x"}),
        ("PUT", f"{CANNED}/{canned['id']}", {"shortcut": "x", "title": "x", "content": "x"}),
        ("DELETE", f"{CANNED}/{canned['id']}", None),
    ]:
        refused = await cai.client.request(
            method, path, json=body, headers={"X-CSRF-Token": cai.csrf}
        )
        assert refused.status_code == 403, (method, refused.text)
        assert refused.json()["error"]["code"] == "admin_only"
    # An admin's cookie without the CSRF token changes nothing.
    no_csrf = await dee.client.delete(f"{CANNED}/{canned['id']}")
    assert no_csrf.status_code == 403
    assert await count(pipe, "chat_canned_responses") == 2
    deleted = await dee.client.delete(
        f"{CANNED}/{canned['id']}", headers={"X-CSRF-Token": dee.csrf}
    )
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"deleted": canned["id"]}
    assert await count(pipe, "chat_canned_responses") == 1
    await dee.client.aclose()
    await cai.client.aclose()


GOOD = {"shortcut": "ok", "title": "Fine", "content": "All fine."}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "field"),
    [
        ("POST", CANNED, {**GOOD, "shortcut": "Refund"}, 400, None, "shortcut"),
        ("POST", CANNED, {**GOOD, "shortcut": "a" * 33}, 400, None, "shortcut"),
        ("POST", CANNED, {**GOOD, "shortcut": ""}, 400, None, "shortcut"),
        ("POST", CANNED, {**GOOD, "shortcut": "a b"}, 400, None, "shortcut"),
        ("POST", CANNED, {**GOOD, "shortcut": "taken"}, 409, "shortcut_taken", "shortcut"),
        ("POST", CANNED, {**GOOD, "title": ""}, 400, None, "title"),
        ("POST", CANNED, {**GOOD, "title": "t" * 121}, 400, None, "title"),
        ("POST", CANNED, {**GOOD, "content": " "}, 400, None, "content"),
        ("POST", CANNED, {"shortcut": "ok", "title": "Fine"}, 400, "missing_field", "content"),
        ("POST", CANNED, {**GOOD, "extra": 1}, 400, "unknown_field", "extra"),
        ("PUT", f"{CANNED}/{UNKNOWN}", GOOD, 404, "canned_response_not_found", None),
        ("PUT", f"{CANNED}/nope", GOOD, 400, "invalid_id", "cannedId"),
        ("PUT", f"{CANNED}/{{first}}", {**GOOD, "shortcut": "taken"}, 409, "shortcut_taken", None),
        ("DELETE", f"{CANNED}/{UNKNOWN}", None, 404, "canned_response_not_found", None),
        ("DELETE", f"{CANNED}/nope", None, 400, "invalid_id", "cannedId"),
    ],
)
async def test_bad_canned_responses_are_refused_and_change_nothing(
    pipe: Pipeline,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str | None,
    field: str | None,
) -> None:
    dee = await staff(pipe, "Dee", Role.ADMIN)
    first = (await dee.post(CANNED, {**GOOD, "shortcut": "first"})).json()["cannedResponse"]
    await dee.post(CANNED, {**GOOD, "shortcut": "taken"})
    before = (await dee.client.get(CANNED)).json()
    response = await dee.client.request(
        method, path.replace("{first}", first["id"]), json=body, headers={"X-CSRF-Token": dee.csrf}
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if field is not None:
        assert error.get("field") == field, error
    assert (await dee.client.get(CANNED)).json() == before
    await dee.client.aclose()


# --- an agent's files --------------------------------------------------------------------------


async def staff_upload(
    anna: Staff, session_id: str, data: bytes, *, csrf: bool = True
) -> httpx.Response:
    return await anna.client.post(
        "/api/inbox/upload",
        headers={"X-CSRF-Token": anna.csrf} if csrf else {},
        data={"sessionId": session_id},
        files={"file": ("photo.png", data, "image/png")},
    )


async def test_an_agent_sends_a_picture_the_shopper_sees_it(pipe: Pipeline) -> None:
    anna = await staff(pipe, "Anna")
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper)
        assert (await anna.post(f"/api/inbox/conversations/{chat.id}/take")).status_code == 200
        uploaded = await staff_upload(anna, chat.id, png())
        assert uploaded.status_code == 201, uploaded.text
        file = uploaded.json()
        assert file["kind"] == "image"
        assert "thumbnailUrl" in file
        async with open_ws(pipe.chatd.url) as widget:
            await join(widget, chat, last_seq=1)
            replied = await anna.post(
                f"/api/inbox/conversations/{chat.id}/messages",
                {"content": "", "attachments": [file["attachmentId"]]},
            )
            assert replied.status_code == 200, replied.text
            event = await receive_type(widget, "new_message")
        (shown,) = event["message"]["attachments"]
        assert (shown["id"], shown["kind"], shown["name"]) == (
            file["attachmentId"],
            "image",
            "photo.png",
        )
        thumb = await shopper.get(shown["thumbnailUrl"])
        assert thumb.status_code == 200
        assert thumb.headers["content-type"].startswith("image/")
        history = await pipe.messages(chat)
        assert history[-1]["senderType"] == "agent"
        assert history[-1]["attachments"][0]["id"] == file["attachmentId"]
        # Sent once: the same file cannot go with a second reply.
        again = await anna.post(
            f"/api/inbox/conversations/{chat.id}/messages",
            {"content": "again", "attachments": [file["attachmentId"]]},
        )
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "attachment_in_use"
    await anna.client.aclose()


async def test_agent_uploads_need_csrf_sign_in_and_the_conversation(pipe: Pipeline) -> None:
    anna = await staff(pipe, "Anna")
    bo = await staff(pipe, "Bo")
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper)
        other = await new_session(shopper)
        shopper_file = await shopper.post(
            "/api/chat/upload",
            headers=other.auth,
            data={"sessionId": other.id},
            files={"file": ("x.png", png(), "image/png")},
        )
        assert shopper_file.status_code == 201
        before = await count(pipe, "chat_attachments")
        not_held = await staff_upload(anna, chat.id, png())
        assert not_held.status_code == 409
        assert not_held.json()["error"]["code"] == "not_holding"
        await anna.post(f"/api/inbox/conversations/{chat.id}/take")
        assert (await staff_upload(anna, chat.id, png(), csrf=False)).status_code == 403
        held_by_other = await staff_upload(bo, chat.id, png())
        assert held_by_other.status_code == 409
        assert held_by_other.json()["error"]["code"] == "conversation_held"
        anonymous = await shopper.post(
            "/api/inbox/upload",
            headers=chat.auth,
            data={"sessionId": chat.id},
            files={"file": ("x.png", png(), "image/png")},
        )
        assert anonymous.status_code == 401
        unknown = await staff_upload(anna, UNKNOWN, png())
        assert unknown.status_code == 404
        bad_type = await staff_upload(anna, chat.id, b"MZ\x90\x00 not a picture")
        assert bad_type.status_code == 415
        assert await count(pipe, "chat_attachments") == before
        counts = await table_counts(pipe.chatd.services.pool)
        # A file of another session cannot go with this one's reply.
        foreign = await anna.post(
            f"/api/inbox/conversations/{chat.id}/messages",
            {"content": "see", "attachments": [shopper_file.json()["attachmentId"]]},
        )
        assert foreign.status_code == 404
        assert foreign.json()["error"]["field"] == "attachments.0"
        too_many = await anna.post(
            f"/api/inbox/conversations/{chat.id}/messages",
            {"content": "see", "attachments": [str(uuid.uuid4()) for _ in range(6)]},
        )
        assert too_many.status_code == 400
        assert too_many.json()["error"]["code"] == "too_many_attachments"
        assert await table_counts(pipe.chatd.services.pool) == counts
    await anna.client.aclose()
    await bo.client.aclose()


# --- the audit trail ---------------------------------------------------------------------------


async def test_the_admin_transcript_carries_the_audit_trail(pipe: Pipeline) -> None:
    anna = await staff(pipe, "Anna")
    bo = await add_agent(pipe.chatd.services.pool, "Bo")
    async with pipe.chatd.client() as shopper:
        chat = await new_session(shopper)
        await shopper.post(
            "/api/chat/handoff", headers=chat.auth, json={"sessionId": chat.id, "reason": "refund"}
        )
        await anna.post(f"/api/inbox/conversations/{chat.id}/take")
        await anna.post(f"/api/inbox/conversations/{chat.id}/messages", {"content": "Hello"})
        await anna.post(f"/api/inbox/conversations/{chat.id}/transfer", {"agentId": bo.id})
        await note(anna, chat, "handed to Bo for the refund")
        token = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        path = f"/api/admin/sessions/{chat.id}/transcript"
        body = (await shopper.get(path, headers=token)).json()
        text = (await shopper.get(f"{path}?format=text", headers=token)).text
    assert [(a["action"], a["agentName"]) for a in body["audit"]] == [
        ("handoff_requested", None),
        ("taken", "Anna"),
        ("replied", "Anna"),
        ("transferred", "Anna"),
    ]
    assert body["audit"][0]["detail"]["reason"] == "refund"
    assert "[audit] The shopper asked for a person (refund)" in text
    assert "[audit] Anna took the conversation over" in text
    assert "[audit] Anna passed the conversation to another agent" in text
    lines = text.splitlines()
    took = next(i for i, line in enumerate(lines) if "took the conversation over" in line)
    assert "Anna joined the chat" in lines[took - 1]  # in time order, beside its message
    assert "handed to Bo" not in text  # notes are the inbox's, not the transcript's
    await anna.client.aclose()
