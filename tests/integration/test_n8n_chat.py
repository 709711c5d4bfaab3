"""/api/n8n-chat against a real chatd and the sink: what n8n's own chat widget sends and reads.

The browser tests with the real @n8n/chat bundle are in tests/e2e/test_n8n_chat_widget.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import trio

from tests.chat import new_session, send, table_counts
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.sink import Hold, Received, Reply, Status, Stream, Wait, chunk

IDENTITY_SECRET = "i" * 32
PATH = "/api/n8n-chat"


@pytest.fixture
async def pipe(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(
        nursery,
        database_url,
        n8n_chat={"enabled": True, "reply_timeout_seconds": 5},
        identity={"secret": IDENTITY_SECRET},
        chat={"max_message_length": 100},
        websocket={"allowed_origins": "http://shop.example"},
    )
    pipe.sink.behave(Reply("Hello from the bot"))
    yield pipe
    pipe.chatd.stop.set()


def send_body(session_id: str, text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"action": "sendMessage", "sessionId": session_id, "chatInput": text, **extra}


async def post(pipe: Pipeline, body: Any, **kwargs: Any) -> httpx.Response:
    async with pipe.chatd.client() as client:
        return await client.post(PATH, json=body, **kwargs)


async def history(pipe: Pipeline, session_id: str) -> list[dict[str, Any]]:
    response = await post(pipe, {"action": "loadPreviousSession", "sessionId": session_id})
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def test_send_answers_output_and_history_maps_to_langchain_messages(pipe: Pipeline) -> None:
    widget = str(uuid.uuid4())
    assert await history(pipe, widget) == []  # a fresh UUID: nothing created by looking
    assert (await table_counts(pipe.chatd.services.pool))["sessions"] == 0
    response = await post(pipe, send_body(widget, "Where is my order?", metadata={"page": "/"}))
    assert response.status_code == 200, response.text
    assert response.json() == {"output": "Hello from the bot"}
    (request,) = pipe.sink.requests
    assert request.json["message"]["content"] == "Where is my order?"
    assert request.json["sessionMetadata"] == {"page": "/"}  # the first message's metadata
    assert request.json["sessionId"] != widget  # chatd's own session id, never the secret
    data = await history(pipe, widget)
    assert [(d["id"][-1], d["kwargs"]["content"]) for d in data] == [
        ("HumanMessage", "Where is my order?"),
        ("AIMessage", "Hello from the bot"),
    ]
    assert data[0]["lc"] == 1
    assert data[0]["type"] == "constructor"
    # The second message goes to the same chatd session.
    assert (await post(pipe, send_body(widget, "thanks"))).status_code == 200
    assert pipe.sink.requests[1].json["sessionId"] == request.json["sessionId"]
    assert len(await history(pipe, widget.upper())) == 4  # UUIDs in either case


async def test_get_mode_sends_and_loads(pipe: Pipeline) -> None:
    widget = str(uuid.uuid4())
    async with pipe.chatd.client() as client:
        sent = await client.get(
            PATH, params={**send_body(widget, "via GET"), "metadata": "[object Object]"}
        )
        loaded = await client.get(
            PATH, params={"action": "loadPreviousSession", "sessionId": widget}
        )
    assert sent.json() == {"output": "Hello from the bot"}
    assert [d["kwargs"]["content"] for d in loaded.json()["data"]] == [
        "via GET",
        "Hello from the bot",
    ]
    assert pipe.sink.requests[0].json["sessionMetadata"] == {}  # '[object Object]' is no JSON


async def test_streaming_accept_gets_begin_item_end(pipe: Pipeline) -> None:
    response = await post(pipe, send_body(str(uuid.uuid4())), headers={"Accept": "text/plain"})
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [line for line in response.text.split("\n") if line]
    kinds = [json.loads(line)["type"] for line in lines]
    assert kinds == ["begin", "item", "end"]
    assert '"content":"Hello from the bot"' in lines[1]


async def test_a_streamed_reply_comes_as_items_before_n8n_finished(pipe: Pipeline) -> None:
    pipe.sink.behave(
        Stream(
            [
                chunk("begin"),
                chunk("item", content="Your order "),
                chunk("item", content="ships "),
                Wait(),
                chunk("item", content="today."),
                chunk("end"),
            ]
        )
    )
    body = send_body(str(uuid.uuid4()))
    seen: list[dict[str, Any]] = []
    async with (
        pipe.chatd.client() as client,
        client.stream("POST", PATH, json=body, headers={"Accept": "text/plain"}) as response,
    ):
        buffer = b""
        async for part in response.aiter_raw():
            buffer += part
            *complete, buffer = buffer.split(b"\n")
            seen += [json.loads(line) for line in complete if line]
            if [s.get("content") for s in seen] == [None, "Your order ", "ships "]:
                pipe.sink.release()  # n8n sends the rest only now: the first pieces came first
    assert [(s["type"], s.get("content")) for s in seen] == [
        ("begin", None),
        ("item", "Your order "),
        ("item", "ships "),
        ("item", "today."),
        ("end", None),
    ]


async def test_quick_replies_and_attachments_degrade_to_markdown(pipe: Pipeline) -> None:
    pipe.sink.queue(
        Reply(
            "Which one?",
            quick_replies=["Track [order]", "Returns"],
            attachments=[{"type": "link", "url": "https://shop.example/t", "title": "Track"}],
        )
    )
    response = await post(pipe, send_body(str(uuid.uuid4())))
    assert response.json()["output"] == (
        "Which one?\n\n- Track \\[order\\]\n- Returns\n\n- [Track](https://shop.example/t)"
    )


async def test_n8n_down_answers_the_fallback_and_the_message_failed(pipe: Pipeline) -> None:
    pipe.sink.behave(Status(503))
    widget = str(uuid.uuid4())
    response = await post(pipe, send_body(widget, "anyone?"))
    fallback = pipe.chatd.services.settings.n8n.fallback_reply
    assert response.json() == {"output": fallback}
    async with pipe.chatd.services.pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT sender_type, status FROM chat_messages ORDER BY seq", prepare=False
            )
        ).fetchall()
    assert [(r["sender_type"], r["status"]) for r in rows] == [
        ("user", "failed"),
        ("bot", "delivered"),
    ]


async def test_reply_too_late_answers_the_timeout_text_and_stays_in_history(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(
        nursery, database_url, n8n_chat={"enabled": True, "reply_timeout_seconds": 0.3}
    )
    pipe.sink.behave(Hold(then=Reply("late but here")))
    widget = str(uuid.uuid4())
    response = await post(pipe, send_body(widget))
    assert response.json() == {"output": pipe.chatd.services.settings.n8n_chat.timeout_reply}
    pipe.sink.release()
    with trio.fail_after(10):
        while len(data := await history(pipe, widget)) < 2:
            await trio.sleep(0.05)
    assert data[1]["kwargs"]["content"] == "late but here"
    pipe.chatd.stop.set()


async def test_identity_token_gives_the_verified_user(pipe: Pipeline) -> None:
    token = jwt.encode(
        {"sub": "user-42", "exp": int(time.time()) + 300, "tier": "gold"},
        IDENTITY_SECRET,
        algorithm="HS256",
    )
    widget = str(uuid.uuid4())
    sent = await post(pipe, send_body(widget), headers={"X-Chatd-Identity": token})
    assert sent.status_code == 200, sent.text
    body = pipe.sink.requests[0].json
    assert body["userId"] == "user-42"
    assert body["userContext"]["tier"] == "gold"
    other = jwt.encode(
        {"sub": "user-7", "exp": int(time.time()) + 300}, IDENTITY_SECRET, algorithm="HS256"
    )
    refused = await post(pipe, send_body(widget), headers={"X-Chatd-Identity": other})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "identity_mismatch"
    forged = await post(
        pipe, send_body(str(uuid.uuid4())), headers={"X-Chatd-Identity": token + "x"}
    )
    assert forged.status_code == 401
    assert len(pipe.sink.requests) == 1


async def test_cors_for_allowed_origins_only(pipe: Pipeline) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-chatd-identity",
    }
    async with pipe.chatd.client() as client:
        allowed = await client.options(PATH, headers={"Origin": "http://shop.example", **preflight})
        refused = await client.options(PATH, headers={"Origin": "http://evil.example", **preflight})
    assert allowed.headers["access-control-allow-origin"] == "http://shop.example"
    assert "X-Chatd-Identity" in allowed.headers["access-control-allow-headers"]
    assert "access-control-allow-origin" not in refused.headers


async def test_id_spaces_never_meet(pipe: Pipeline) -> None:
    """A chatd widget's session id used as an @n8n/chat sessionId names another session, and
    the @n8n/chat UUID opens nothing in chatd's own API."""
    async with pipe.chatd.client() as client:
        own = await new_session(client)
        assert (await send(client, own, "from chatd's widget")).status_code == 200
        await pipe.sink.wait_for(1)
        assert await history(pipe, own.id) == []  # not chatd's session: nothing to show
        assert (await post(pipe, send_body(own.id, "from @n8n/chat"))).status_code == 200
        bodies = [r.json for r in pipe.sink.requests]
        assert bodies[1]["sessionId"] != own.id
        # chatd's API with the widget's UUID as the session id, and as its token: unknown.
        opened = await client.get(
            f"/api/chat/session/{own.id}", headers={"Authorization": f"Bearer {own.id}"}
        )
        assert opened.status_code == 401
        mapped = bodies[1]["sessionId"]
        by_uuid = await client.get(
            f"/api/chat/session/{mapped}", headers={"Authorization": f"Bearer {own.id}"}
        )
        assert by_uuid.status_code == 401
    data = await history(pipe, own.id)
    assert [d["kwargs"]["content"] for d in data] == ["from @n8n/chat", "Hello from the bot"]
    own_messages = await pipe.messages(own)
    assert own_messages[0]["content"] == "from chatd's widget"
    assert all(m["content"] != "from @n8n/chat" for m in own_messages)


async def test_an_expired_session_gives_its_uuid_to_a_new_one(pipe: Pipeline) -> None:
    widget = str(uuid.uuid4())
    assert (await post(pipe, send_body(widget, "before"))).status_code == 200
    async with pipe.chatd.services.pool.connection() as conn:
        await conn.execute("UPDATE chat_sessions SET expires_at = now() - interval '1 second'")
    assert await history(pipe, widget) == []  # the expired session is not shown
    assert (await post(pipe, send_body(widget, "after"))).status_code == 200
    first, second = (r.json["sessionId"] for r in pipe.sink.requests)
    assert first != second
    data = await history(pipe, widget)
    assert [d["kwargs"]["content"] for d in data] == ["after", "Hello from the bot"]
    counts = await table_counts(pipe.chatd.services.pool)
    assert (counts["sessions"], counts["messages"]) == (2, 4)  # the old history is kept


BAD_BODIES = [
    ({"sessionId": "x", "chatInput": "hi"}, 400, "action"),
    ({"action": "dance", "sessionId": str(uuid.uuid4())}, 400, "action"),
    ({"action": "sendMessage", "sessionId": "not-a-uuid", "chatInput": "hi"}, 400, "sessionId"),
    ({"action": "sendMessage", "sessionId": "{" + "a" * 34 + "}", "chatInput": "hi"}, 400, None),
    ({"action": "sendMessage", "sessionId": str(uuid.uuid4())}, 400, "chatInput"),
    ({"action": "sendMessage", "sessionId": str(uuid.uuid4()), "chatInput": 5}, 400, "chatInput"),
    (
        {"action": "sendMessage", "sessionId": str(uuid.uuid4()), "chatInput": "x" * 101},
        400,
        "chatInput",
    ),
    ({"action": "sendMessage", "sessionId": str(uuid.uuid4()), "chatInput": "  "}, 400, None),
    (send_body(str(uuid.uuid4()), message="renamed key"), 400, "message"),
    (["not", "an", "object"], 400, None),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_BODIES)
async def test_bad_input_is_a_clear_4xx_and_stores_nothing(
    pipe: Pipeline, body: Any, status: int, field: str | None
) -> None:
    before = await table_counts(pipe.chatd.services.pool)
    response = await post(pipe, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if field is not None:
        assert error.get("field") == field, error
    assert await table_counts(pipe.chatd.services.pool) == before
    assert pipe.sink.requests == []


BOUNDARY = "chatd-test-boundary"


def multipart(fields: dict[str, str]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    file_head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return "".join(parts).encode() + file_head.encode()


async def raw_post(pipe: Pipeline, widget: str, size: int) -> tuple[int, bytes]:
    """A multipart form declaring `size` bytes, on a raw socket: chatd answers (and closes)
    long before a client would have sent it all."""
    head = multipart({"action": "sendMessage", "sessionId": widget, "chatInput": "hi"})
    host, port = pipe.chatd.url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    request = (
        f"POST {PATH} HTTP/1.1\r\nHost: chatd\r\nContent-Length: {size}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
    ).encode()
    answer = b""
    with trio.fail_after(10):
        async with stream:
            await stream.send_all(request + head + b"x" * 65536)
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = await stream.receive_some()
                if not chunk:
                    break
                answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


async def test_oversized_forms_queries_and_media_are_refused(pipe: Pipeline) -> None:
    before = await table_counts(pipe.chatd.services.pool)
    widget = str(uuid.uuid4())
    async with pipe.chatd.client() as client:
        long_get = await client.get(PATH, params={**send_body(widget), "pad": "y" * 12_000})
        text = await client.post(PATH, content=b"hi", headers={"Content-Type": "text/plain"})
        big_json = await client.post(PATH, json=send_body(widget, pad="z" * 70_000))
    # Past a form's limit (chatd/http/routes_n8n_chat.form_limit: its fields, and its files at
    # attachments' defaults, 5 x 10 MB): refused on its declared length, before it is read.
    form_status, form_body = await raw_post(pipe, widget, 60 * 1024 * 1024)
    assert form_status == 413
    assert json.loads(form_body)["error"]["code"] == "form_too_large"
    assert big_json.status_code == 413  # a JSON body stays under server.max_body_bytes
    assert long_get.status_code == 400
    assert long_get.json()["error"]["code"] == "query_too_long"
    assert text.status_code == 415
    assert await table_counts(pipe.chatd.services.pool) == before
    assert pipe.sink.requests == []


async def test_multipart_form_without_files_is_a_message(pipe: Pipeline) -> None:
    widget = str(uuid.uuid4())
    async with pipe.chatd.client() as client:
        response = await client.post(
            PATH,
            files={
                "action": (None, "sendMessage"),
                "sessionId": (None, widget),
                "chatInput": (None, "form"),
                "metadata": (None, '{"a": 1}'),
            },
        )
    assert response.json() == {"output": "Hello from the bot"}
    assert pipe.sink.requests[0].json["sessionMetadata"] == {"a": 1}


async def test_disabled_endpoint_is_404(chatd: Any) -> None:
    async with chatd.client() as client:
        response = await client.post(PATH, json=send_body(str(uuid.uuid4())))
        got = await client.get(PATH, params={"action": "loadPreviousSession"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "n8n_chat_disabled"
    assert got.status_code == 404


def echo(received: Received) -> Reply:
    """n8n answering each message by name, slowly enough for both sends to be stored first."""
    return Reply(f"re: {received.json['message']['content']}", delay=0.5)


@pytest.mark.parametrize("streaming", [False, True])
async def test_two_sends_at_once_in_one_session_each_get_their_own_reply(
    pipe: Pipeline, streaming: bool
) -> None:
    widget = str(uuid.uuid4())
    assert (await post(pipe, send_body(widget, "hello"))).status_code == 200  # the session
    pipe.sink.behave(echo)
    headers = {"Accept": "text/plain"} if streaming else {}
    answers: dict[str, str] = {}

    async def one(text: str) -> None:
        response = await post(pipe, send_body(widget, text), headers=headers)
        assert response.status_code == 200, response.text
        if streaming:
            lines = [json.loads(line) for line in response.text.split("\n") if line]
            answers[text] = "".join(line.get("content", "") for line in lines)
        else:
            answers[text] = response.json()["output"]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, "apples")
        nursery.start_soon(one, "pears")
    assert answers == {"apples": "re: apples", "pears": "re: pears"}
    # Both were waiting when the first reply was stored: the second did not take it.
    seqs = {r.json["message"]["content"]: r.json["seq"] for r in pipe.sink.requests[1:]}
    assert sorted(seqs.values()) == [3, 4]


async def test_history_shows_a_reply_still_streaming_as_its_text_so_far(pipe: Pipeline) -> None:
    pipe.sink.behave(
        Stream(
            [
                chunk("begin"),
                chunk("item", content="Your order "),
                chunk("item", content="ships "),
                Wait(),
                chunk("item", content="today."),
                chunk("end"),
            ]
        )
    )
    widget = str(uuid.uuid4())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(post, pipe, send_body(widget, "where is it?"))
        with trio.fail_after(10):
            while [d["kwargs"]["content"] for d in await history(pipe, widget)] != [
                "where is it?",
                "Your order ships …",  # marked unfinished: the widget will not ask again
            ]:
                await trio.sleep(0.05)
        data = await history(pipe, widget)
        assert [d["id"][-1] for d in data] == ["HumanMessage", "AIMessage"]
        pipe.sink.release()
    data = await history(pipe, widget)
    assert [d["kwargs"]["content"] for d in data] == ["where is it?", "Your order ships today."]
