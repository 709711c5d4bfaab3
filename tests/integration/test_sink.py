"""The n8n stand-in itself (tests/sink.py), exercised with real HTTP requests."""

from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from tests.sink import (
    Ack,
    Behaviour,
    Callback,
    Drop,
    Hold,
    Html,
    Huge,
    Output,
    Received,
    Reply,
    Sink,
    Status,
)


@pytest.fixture
async def sink(nursery: trio.Nursery) -> AsyncIterator[Sink]:
    sink = await Sink.start(nursery)
    yield sink
    await sink.stop()
    assert sink.errors == []


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


async def post(
    client: httpx.AsyncClient, sink: Sink, session: str = "s1", **extra: object
) -> httpx.Response:
    return await client.post(sink.webhook_url, json={"sessionId": session, **extra})


async def test_default_reply_and_what_is_recorded(sink: Sink, client: httpx.AsyncClient) -> None:
    assert sink.url.startswith("http://127.0.0.1:")
    assert sink.webhook_url == f"{sink.url}/webhook"
    before_trio, before_perf = trio.current_time(), time.perf_counter()

    response = await client.post(
        sink.webhook_url, json={"sessionId": "s1", "n": 1}, headers={"X-Custom": "yes"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"sessionId": "s1", "response": {"content": "ok", "type": "text"}}
    [got] = sink.requests
    assert (got.method, got.path) == ("POST", "/webhook")
    assert got.headers["x-custom"] == "yes"
    assert got.headers["content-type"] == "application/json"
    assert json.loads(got.body) == got.json == {"sessionId": "s1", "n": 1}
    assert before_trio <= got.arrived_at <= trio.current_time()
    assert before_perf <= got.perf <= time.perf_counter()
    assert sink.bodies() == [{"sessionId": "s1", "n": 1}]


async def test_non_json_body_is_recorded_raw(sink: Sink, client: httpx.AsyncClient) -> None:
    await client.put(f"{sink.url}/other?x=1", content=b"not json")
    [got] = sink.requests
    assert (got.method, got.path, got.body, got.json) == ("PUT", "/other", b"not json", None)
    assert got.session_id is None


async def test_reply_with_everything(sink: Sink, client: httpx.AsyncClient) -> None:
    quick = [{"title": "Yes", "payload": "yes"}]
    files = [{"type": "image", "url": "https://example.test/a.png"}]
    sink.behave(Reply("pick one", "quick_reply", quick, files, status=201))
    response = await post(client, sink, "s9")
    assert response.status_code == 201
    assert response.json() == {
        "sessionId": "s9",
        "response": {
            "content": "pick one",
            "type": "quick_reply",
            "quickReplies": quick,
            "attachments": files,
        },
    }


async def test_output(sink: Sink, client: httpx.AsyncClient) -> None:
    sink.behave(Output("from the agent"))
    response = await post(client, sink)
    assert (response.status_code, response.json()) == (200, {"output": "from the agent"})


async def test_ack(sink: Sink, client: httpx.AsyncClient) -> None:
    sink.queue(Ack(), Ack(202, b'{"message":"Workflow was started"}'))
    empty, started = await post(client, sink), await post(client, sink)
    assert (empty.status_code, empty.content) == (200, b"")
    assert started.status_code == 202
    assert started.json() == {"message": "Workflow was started"}
    assert started.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "status",
    [
        Status(500),
        Status(503, headers={"Retry-After": "2"}),
        Status(429, headers={"Retry-After": "1"}),
        Status(400),
        Status(404, b"Not Found"),
        Status(410),
        Status(403, body=b'{"message":"Authorization data is wrong!"}'),
    ],
)
async def test_status(sink: Sink, client: httpx.AsyncClient, status: Status) -> None:
    sink.behave(status)
    response = await post(client, sink)
    assert (response.status_code, response.content) == (status.status, status.body)
    for name, value in status.headers.items():
        assert response.headers[name] == value


async def test_html(sink: Sink, client: httpx.AsyncClient) -> None:
    sink.behave(Html(status=502))
    response = await post(client, sink)
    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert response.text.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("declare_length", [True, False])
async def test_huge(sink: Sink, client: httpx.AsyncClient, declare_length: bool) -> None:
    size = 3 * 1024 * 1024 + 7
    sink.behave(Huge(size, declare_length=declare_length))
    async with client.stream("POST", sink.webhook_url, json={}) as response:
        assert response.headers.get("content-length") == (str(size) if declare_length else None)
        assert (response.headers.get("transfer-encoding") == "chunked") is not declare_length
        body = await response.aread()
    assert len(body) == size
    assert json.loads(body) == {"output": "x" * (size - 13)}


async def test_huge_reader_hanging_up_early_is_fine(sink: Sink, client: httpx.AsyncClient) -> None:
    sink.queue(Huge())
    async with client.stream("POST", sink.webhook_url, json={}) as response:
        assert response.status_code == 200  # then close the connection without reading on
    assert (await post(client, sink)).status_code == 200


async def test_drop_closes_without_a_response(sink: Sink, client: httpx.AsyncClient) -> None:
    sink.queue(Drop())
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await post(client, sink)
    assert len(sink.requests) == 1
    assert (await post(client, sink)).status_code == 200  # the server itself is fine


async def test_delay(sink: Sink, client: httpx.AsyncClient) -> None:
    sink.queue(Reply("late", delay=0.3))
    started = time.perf_counter()
    response = await post(client, sink)
    assert time.perf_counter() - started >= 0.3
    assert response.json()["response"]["content"] == "late"


async def test_delay_past_the_client_timeout(sink: Sink) -> None:
    sink.behave(Status(500, delay=30))
    async with httpx.AsyncClient(timeout=0.2) as short:
        with pytest.raises(httpx.ReadTimeout):
            await post(short, sink)
    with trio.fail_after(3):
        await sink.stop()  # the 30 s wait is dropped, not sat out


async def test_choice_order(sink: Sink, client: httpx.AsyncClient) -> None:
    """behave_for wins over the queue, the queue over the default; a callable picks freely."""
    sink.behave(Reply("default"))
    sink.behave_for("vip", Reply("vip"))
    sink.queue(Reply("first"), Reply("second"))

    def by_body(received: Received) -> Behaviour:
        return Output(f"n={received.json['n']}")

    sink.behave_for("fn", by_body)

    async def content(session: str, n: int = 0) -> object:
        data = (await post(client, sink, session, n=n)).json()
        return data.get("output") or data["response"]["content"]

    assert await content("a") == "first"
    assert await content("vip") == "vip"
    assert await content("fn", 7) == "n=7"
    assert await content("b") == "second"
    assert await content("a") == "default"
    assert [r.json["n"] for r in sink.for_session("fn")] == [7]
    assert [r.session_id for r in sink.for_session("a")] == ["a", "a"]


async def test_a_failing_rule_answers_500_and_is_kept(
    sink: Sink, client: httpx.AsyncClient
) -> None:
    def broken(received: Received) -> Behaviour:
        raise ZeroDivisionError

    sink.behave(broken)
    assert (await post(client, sink)).status_code == 500
    assert [type(e) for e in sink.errors] == [ZeroDivisionError]
    sink.errors.clear()


async def test_hold_and_release(sink: Sink, client: httpx.AsyncClient) -> None:
    sink.queue(Hold(), Hold(then=Status(503)))
    results: dict[str, httpx.Response] = {}

    async def call(session: str) -> None:
        results[session] = await post(client, sink, session)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, "one")
        nursery.start_soon(call, "two")
        await sink.wait_for(2)
        await trio.sleep(0.1)
        assert results == {}  # both held
        sink.release()

    assert results["one"].status_code + results["two"].status_code == 200 + 503
    sink.behave(Hold())
    with trio.move_on_after(0.2):  # a release only answers what was held before it
        await post(client, sink)
        pytest.fail("a Hold after the release was answered without a new release")


async def test_wait_for_times_out(sink: Sink) -> None:
    with pytest.raises(AssertionError, match="did not get 1 requests"):
        await sink.wait_for(1, timeout=0.05)


async def connects(port: int) -> bool:
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return False
    await stream.aclose()
    return True


async def test_refuse_and_accept_take_effect_at_once(sink: Sink) -> None:
    port = sink.port
    for _ in range(3):
        sink.refuse_connections()
        assert not await connects(port)
        async with httpx.AsyncClient() as fresh:
            with pytest.raises(httpx.ConnectError):
                await fresh.get(sink.url)
        sink.refuse_connections()  # already refused: nothing to do

        sink.accept_connections()
        assert sink.port == port
        assert await connects(port)
        sink.accept_connections()  # already listening: nothing to do
    async with httpx.AsyncClient() as fresh:
        assert (await post(fresh, sink)).status_code == 200


async def test_refuse_cuts_a_held_request(sink: Sink, client: httpx.AsyncClient) -> None:
    sink.behave(Hold())
    async with trio.open_nursery() as nursery:

        async def held() -> None:
            with pytest.raises(httpx.RemoteProtocolError):
                await post(client, sink, "held")

        nursery.start_soon(held)
        await sink.wait_for(1)
        sink.refuse_connections()  # the held request is cut, not answered

    sink.behave(Reply("back"))
    sink.accept_connections()
    response = await post(client, sink)
    assert response.json()["response"]["content"] == "back"
    gc.collect()  # an abandoned server-side socket would warn (ResourceWarning is an error)


async def test_refuse_cuts_an_idle_connection(sink: Sink, client: httpx.AsyncClient) -> None:
    assert (await post(client, sink, "before")).status_code == 200  # a keep-alive connection
    sink.refuse_connections()
    # Sent at once on that connection: cut (closed or reset), or dropped; never recorded.
    with pytest.raises(httpx.TransportError):
        await post(client, sink, "late")
    with pytest.raises(httpx.ConnectError):
        await post(client, sink, "later")
    assert [r.session_id for r in sink.requests] == ["before"]
    gc.collect()


async def test_stop_closes_everything(nursery: trio.Nursery, client: httpx.AsyncClient) -> None:
    sink = await Sink.start(nursery)
    port = sink.port
    sink.refuse_connections()
    sink.accept_connections()  # stop also ends a later listening period
    sink.behave(Hold())
    async with trio.open_nursery() as inner:

        async def held() -> None:
            with pytest.raises(httpx.RemoteProtocolError):
                await post(client, sink)

        inner.start_soon(held)
        await sink.wait_for(1)
        with trio.fail_after(3):
            await sink.stop()
    assert not await connects(port)
    gc.collect()


async def test_a_cancelled_sink_leaves_nothing_open(client: httpx.AsyncClient) -> None:
    """No stop(): the sink's nursery just ends, as a test's nursery fixture does."""
    async with trio.open_nursery() as nursery:
        sink = await Sink.start(nursery)
        assert (await post(client, sink)).status_code == 200  # a keep-alive connection
        sink.behave(Hold())
        nursery.start_soon(post, client, sink)
        await sink.wait_for(2)
        nursery.cancel_scope.cancel()
    assert not await connects(sink.port)
    gc.collect()


def hex_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-webhook-signature"], expected)


def standard_ok(key: bytes, headers: dict[str, str], body: bytes) -> bool:
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(headers["webhook-signature"], expected)


@pytest.fixture
async def chatd_stand_in(nursery: trio.Nursery) -> AsyncIterator[Sink]:
    """Another sink playing chatd's callback endpoint: it records and answers 200."""
    receiver = await Sink.start(nursery)
    receiver.behave(Status(200, b'{"ok":true}'))
    yield receiver
    await receiver.stop()


async def test_callback_hex(sink: Sink, chatd_stand_in: Sink, client: httpx.AsyncClient) -> None:
    secret = "a-shared-secret-of-enough-length-0123456789"
    sink.behave(Callback("later", chatd_stand_in.url, secret))

    response = await post(client, sink, "s1", messageId="m1")

    assert response.status_code == 202
    assert response.json() == {"message": "Workflow was started"}
    [got] = await chatd_stand_in.wait_for(1)
    assert got.perf - sink.requests[0].perf >= 0.05  # after the ack and the callback_delay
    assert (got.method, got.path) == ("POST", "/api/chat/webhook")
    assert got.headers["content-type"] == "application/json"
    assert got.json == {
        "sessionId": "s1",
        "replyTo": "m1",
        "response": {"content": "later", "type": "text"},
    }
    assert hex_ok(secret, got.headers, got.body)
    assert not hex_ok(secret + "x", got.headers, got.body)
    assert "webhook-signature" not in got.headers
    assert await sink.wait_for_callbacks(1) == [(200, b'{"ok":true}')]


@pytest.mark.parametrize(
    ("secret", "key"),
    [("plain-secret", b"plain-secret"), ("whsec_" + base64.b64encode(b"k3y").decode(), b"k3y")],
)
async def test_callback_standard_webhooks_twice(
    sink: Sink, chatd_stand_in: Sink, client: httpx.AsyncClient, secret: str, key: bytes
) -> None:
    sink.behave(Callback("twice", chatd_stand_in.url, secret, scheme="standard", times=2))
    # n8n Chat Trigger form: the message id travels in "metadata".
    await post(client, sink, "s2", action="sendMessage", metadata={"messageId": "m2"})

    first, second = await chatd_stand_in.wait_for(2)
    assert first.json["replyTo"] == "m2"
    assert first.body == second.body
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert first.headers[name] == second.headers[name]
    assert abs(int(first.headers["webhook-timestamp"]) - time.time()) < 5
    assert standard_ok(key, first.headers, first.body)
    assert not standard_ok(key + b"x", first.headers, first.body)
    assert "x-webhook-signature" not in first.headers
    assert [status for status, _ in await sink.wait_for_callbacks(2)] == [200, 200]


async def test_callback_fresh_id_per_request_and_ack_delay(
    sink: Sink, chatd_stand_in: Sink, client: httpx.AsyncClient
) -> None:
    sink.behave(Callback("x", chatd_stand_in.url, "s", "standard", ack_delay=0.2))
    started = time.perf_counter()
    await post(client, sink)
    assert time.perf_counter() - started >= 0.2
    await post(client, sink)
    first, second = await chatd_stand_in.wait_for(2)
    assert first.headers["webhook-id"] != second.headers["webhook-id"]


async def test_callback_failure_is_recorded(sink: Sink, client: httpx.AsyncClient) -> None:
    async with trio.open_nursery() as nursery:  # find a port nobody listens on
        gone = await Sink.start(nursery)
        await gone.stop()
    sink.behave(Callback("x", gone.url, "s", callback_delay=0))
    await post(client, sink)
    [(status, body)] = await sink.wait_for_callbacks(1)
    assert status == 0
    assert b"ConnectError" in body
