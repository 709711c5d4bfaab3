"""chatd's workflows in a real n8n (tests/n8n.py), driven with chatd-shaped signed requests.

The agent's model is tests/llm_standin.py: it streams its answer token by token and stops after
a few tokens until the test has seen one come out of n8n, so a reply n8n held back until the end
would fail here. The requests are the ones chatd sends (chatd.core.signing); what chatd does
with the stream is tested at the end: chatd delivering to the agent workflows, a real WebSocket
client of the session receiving the reply piece by piece.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import trio

from chatd.core.replies import parse_callback, parse_reply_body
from chatd.core.signing import sign_headers, verify_callback
from chatd.n8n import agent_workflow
from tests.chat import new_session, send
from tests.integration.test_delivery import open_pipeline
from tests.llm_standin import LlmStandin, answer_for, tokens_of
from tests.n8n import ChatdN8n
from tests.sink import Sink
from tests.ws import join, open_ws, receive

# Long: the first test waits for n8n's start (imports, publishing: 40-90 s on 2 busy cores).
pytestmark = [pytest.mark.n8n, pytest.mark.timeout(400)]

HELD_TOKENS = 3  # the stand-in sends these, then waits for the test to see one streamed


def chatd_payload(session_id: str, content: str, *, callback_url: str = "") -> dict[str, Any]:
    """The guide's N8nWebhookPayload plus callbackUrl and deliveryId, as chatd sends it."""
    return {
        "sessionId": session_id,
        "messageId": str(uuid.uuid4()),
        "seq": 1,
        "userId": None,
        "guestEmail": "ann@shop.example",
        "message": {"content": content, "type": "text", "timestamp": "2026-12-06T10:00:00Z"},
        "userContext": {"isAuthenticated": False},
        "sessionMetadata": {"page": "/cart", "ratio": 1.0},
        "callbackUrl": callback_url or "http://127.0.0.1:9/api/chat/webhook",
        "deliveryId": str(uuid.uuid4()),
    }


def signed(
    document: dict[str, Any], secret: str, *, signing_secret: str = ""
) -> tuple[bytes, dict[str, str]]:
    """Body and headers of chatd's POST: X-Webhook-Secret and a Standard Webhooks signature."""
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = {
        "content-type": "application/json",
        "user-agent": "chatd",
        "x-webhook-secret": secret,
    }
    headers.update(
        sign_headers(
            [signing_secret or secret], document.get("deliveryId", "d"), int(time.time()), body
        )
    )
    return body, headers


@dataclass
class Streamed:
    status: int
    headers: httpx.Headers
    raw: bytes = b""
    chunks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c["content"] for c in self.chunks if c["type"] == "item")


async def stream(
    url: str,
    body: bytes,
    headers: dict[str, str],
    on_chunk: Callable[[dict[str, Any]], None] = lambda _: None,
    *,
    accept_encoding: str = "identity",
) -> Streamed:
    """POST and read n8n's answer line by line as it arrives; on_chunk sees each chunk then.
    `raw` is the body as sent (identity) or as httpx inflated it while reading (gzip)."""
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5)) as client,
        client.stream(
            "POST", url, content=body, headers={**headers, "accept-encoding": accept_encoding}
        ) as response,
    ):
        result = Streamed(response.status_code, response.headers)
        if response.status_code != 200:  # a refusal is a plain body, not a stream
            result.raw = await response.aread()
            return result
        buffer = b""
        async for data in response.aiter_bytes():
            result.raw += data
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                chunk = json.loads(line)
                if chunk["type"] == "keepalive":  # n8n 2.x, every 30 s of a long execution
                    continue
                result.chunks.append(chunk)
                on_chunk(chunk)
        assert buffer == b"", f"n8n's stream ended mid-line: {buffer!r}"
    return result


# httpx asks for gzip by default (so does chatd's sender): n8n then compresses the stream,
# flushing each chunk, and the tokens still come one by one.
@pytest.mark.parametrize("accept_encoding", ["identity", "gzip"])
async def test_agent_reply_streams_token_by_token(
    accept_encoding: str, real_n8n: ChatdN8n, llm_socket: socket.socket, nursery: trio.Nursery
) -> None:
    standin = await LlmStandin.start(nursery, sock=llm_socket)
    standin.hold_after(HELD_TOKENS)
    question = "Where is my order?"
    body, headers = signed(chatd_payload(str(uuid.uuid4()), question), real_n8n.secret)
    seen_while_held: list[dict[str, Any]] = []

    def on_chunk(chunk: dict[str, Any]) -> None:
        if chunk["type"] == "item" and not standin.finished[0]:
            seen_while_held.append(chunk)
            standin.release()

    with trio.fail_after(60):
        result = await stream(
            real_n8n.url("agent"), body, headers, on_chunk, accept_encoding=accept_encoding
        )

    assert result.status == 200
    assert result.headers["content-type"] == "application/json; charset=utf-8"
    assert result.headers["transfer-encoding"] == "chunked"
    assert result.headers.get("content-encoding", "identity") == accept_encoding
    # A token came out of n8n while the model was still holding back the rest of its answer.
    assert seen_while_held, "no streamed token arrived before the model finished its answer"
    assert len(standin.requests) == 1
    assert result.text == answer_for(question)
    assert result.raw.endswith(b"\n")  # newline-delimited JSON, every chunk ends with "\n"

    kinds = [c["type"] for c in result.chunks]
    assert kinds == ["begin"] + ["item"] * len(tokens_of(answer_for(question))) + ["end"]
    node_id = real_n8n.node_id("agent", agent_workflow.AGENT)
    for chunk in result.chunks:
        metadata = chunk["metadata"]
        assert set(metadata) == {"nodeId", "nodeName", "itemIndex", "runIndex", "timestamp"}
        assert (metadata["nodeId"], metadata["nodeName"]) == (node_id, agent_workflow.AGENT)
        assert (metadata["itemIndex"], metadata["runIndex"]) == (0, 0)
        assert isinstance(metadata["timestamp"], int)  # milliseconds since the epoch
        assert ("content" in chunk) == (chunk["type"] == "item")
    assert [c["content"] for c in result.chunks[1:-1]] == tokens_of(answer_for(question))

    request = standin.requests[0]
    assert request.body["stream"] is True
    assert request.body["model"] == agent_workflow.DEFAULT_MODEL
    assert request.headers["authorization"] == "Bearer sk-test-standin"
    assert request.conversation() == [("system", agent_workflow.SYSTEM_PROMPT), ("user", question)]


async def test_agent_remembers_the_session_and_only_it(
    real_n8n: ChatdN8n, llm_socket: socket.socket, nursery: trio.Nursery
) -> None:
    standin = await LlmStandin.start(nursery, sock=llm_socket)
    session, other = str(uuid.uuid4()), str(uuid.uuid4())
    asked = [(session, "Where is my order?"), (session, "And can I return it?"), (other, "Hi")]
    for session_id, question in asked:
        body, headers = signed(chatd_payload(session_id, question), real_n8n.secret)
        with trio.fail_after(60):
            result = await stream(real_n8n.url("agent"), body, headers)
        assert result.text == answer_for(question)

    system = ("system", agent_workflow.SYSTEM_PROMPT)
    first, second, third = (request.conversation() for request in standin.requests)
    assert first == [system, ("user", asked[0][1])]
    # The second message of the session carries the first exchange (memory keyed by sessionId).
    assert second == [
        system,
        ("user", asked[0][1]),
        ("assistant", answer_for(asked[0][1])),
        ("user", asked[1][1]),
    ]
    assert third == [system, ("user", "Hi")]  # another session starts afresh


async def test_agent_refuses_a_bad_signature_in_the_stream_and_a_bad_secret_outright(
    real_n8n: ChatdN8n, llm_socket: socket.socket, nursery: trio.Nursery
) -> None:
    standin = await LlmStandin.start(nursery, sock=llm_socket)
    document = chatd_payload(str(uuid.uuid4()), "Where is my order?")
    body, headers = signed(
        document, real_n8n.secret, signing_secret="not-the-shared-secret-0123456"
    )
    with trio.fail_after(60):
        result = await stream(real_n8n.url("agent"), body, headers)
    # n8n answered 200 before any node ran; the check's Stop and Error ends the stream.
    assert result.status == 200
    assert [c["type"] for c in result.chunks] == ["error"]
    assert result.chunks[0]["metadata"] == {
        "nodeId": real_n8n.node_id("agent", agent_workflow.REJECT),
        "nodeName": agent_workflow.REJECT,
        "runIndex": 0,
        "itemIndex": 0,
    }
    body, headers = signed(document, "a-wrong-secret-0123456789abcdef")
    with trio.fail_after(30):
        result = await stream(real_n8n.url("agent"), body, headers)
    assert result.status == 403
    assert standin.requests == []


async def test_chat_trigger_agent_streams_to_chatds_chat_body(
    real_n8n: ChatdN8n, llm_socket: socket.socket, nursery: trio.Nursery
) -> None:
    standin = await LlmStandin.start(nursery, sock=llm_socket)
    session = str(uuid.uuid4())
    question = "Hello, do you ship to Norway?"
    document = {
        "action": "sendMessage",
        "sessionId": session,
        "chatInput": question,
        "metadata": chatd_payload(session, question),
    }
    body, headers = signed(document, real_n8n.secret)
    with trio.fail_after(60):
        result = await stream(real_n8n.chat_trigger_url_with_auth(), body, headers)
    assert result.status == 200
    assert result.headers["content-type"] == "application/json; charset=utf-8"
    assert [c["type"] for c in result.chunks][:: len(result.chunks) - 1] == ["begin", "end"]
    assert result.text == answer_for(question)
    assert result.chunks[0]["metadata"]["nodeId"] == real_n8n.node_id(
        "chat_trigger", agent_workflow.AGENT
    )
    assert standin.requests[0].conversation()[-1] == ("user", question)

    with trio.fail_after(30):  # without chatd's Basic Auth
        refused = await stream(real_n8n.url("chat_trigger"), body, headers)
    assert refused.status == 401
    assert len(standin.requests) == 1


async def test_sync_workflow_answers_what_chatd_parses(real_n8n: ChatdN8n) -> None:
    body, headers = signed(chatd_payload(str(uuid.uuid4()), "hello there"), real_n8n.secret)
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(real_n8n.url("sync"), content=body, headers=headers)
    assert response.status_code == 200
    reply = parse_reply_body(response.content, mode="webhook")
    assert reply is not None
    assert reply.content == "Hi! How can I help you today?"


async def test_callback_workflow_posts_a_signed_reply(
    real_n8n: ChatdN8n, nursery: trio.Nursery
) -> None:
    sink = await Sink.start(nursery)  # plays chatd's callback endpoint
    payload = chatd_payload(
        str(uuid.uuid4()), "Where is my order?", callback_url=f"{sink.url}/api/chat/webhook"
    )
    body, headers = signed(payload, real_n8n.secret)
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(real_n8n.url("callback"), content=body, headers=headers)
    assert response.status_code == 202
    assert response.json() == {"message": "Workflow was started"}
    (callback,) = await sink.wait_for(1, timeout=30)
    assert callback.path == "/api/chat/webhook"
    assert (
        verify_callback(callback.headers, callback.body, [real_n8n.secret], now=time.time())
        == "hex"
    )
    parsed = parse_callback(json.loads(callback.body))
    assert (parsed.session_id, parsed.reply_to) == (payload["sessionId"], payload["messageId"])
    assert parsed.reply.content == "I can help with your order. What is your order number?"


# -- through chatd: n8n's stream to the shopper's WebSocket ---------------------------------------


@pytest.mark.parametrize("workflow", ["agent", "chat_trigger"])
async def test_chatd_streams_the_agents_reply_to_the_shopper_as_n8n_writes_it(
    workflow: str,
    real_n8n: ChatdN8n,
    llm_socket: socket.socket,
    nursery: trio.Nursery,
    database_url: str,
) -> None:
    standin = await LlmStandin.start(nursery, sock=llm_socket)
    standin.hold_after(HELD_TOKENS)
    if workflow == "agent":
        n8n = {"webhook_url": real_n8n.url("agent")}
    else:  # Basic Auth in the URL, as the workflow's notes say
        n8n = {"webhook_url": real_n8n.chat_trigger_url_with_auth(), "mode": "chat_trigger"}
    pipe = await open_pipeline(
        nursery,
        database_url,
        n8n={**n8n, "webhook_secret": real_n8n.secret, "timeout_seconds": 30},
    )
    question = "Where is my order?"
    answer = answer_for(question)
    held: list[dict[str, Any]] = []  # pieces the shopper had while the model held back the rest
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        async with open_ws(pipe.chatd.url) as ws:
            await join(ws, session)
            sent = (await send(client, session, question)).json()
            events: list[dict[str, Any]] = []
            with trio.fail_after(90):
                while not any(e["type"] == "new_message" and e["message"]["senderType"] == "bot"
                              for e in events):  # fmt: skip
                    event = await receive(ws, 90)
                    events.append(event)
                    if event["type"] == "message_delta" and not standin.finished[0]:
                        held.append(event)
                        standin.release()
    assert held, "no piece reached the shopper before the model finished its answer"
    deltas = [e for e in events if e["type"] == "message_delta"]
    (bot,) = [
        e["message"]
        for e in events
        if e["type"] == "new_message" and e["message"]["senderType"] == "bot"
    ]
    assert [d["text"] for d in deltas] == tokens_of(answer)
    assert [d["index"] for d in deltas] == list(range(len(deltas)))
    assert {d["messageId"] for d in deltas} == {bot["id"]}
    assert {d["replyTo"] for d in deltas} == {sent["messageId"]}
    assert bot["content"] == answer
    assert [e for e in events if e["type"] == "message_stream_end"] == []
    messages = await pipe.messages(session)
    assert [(m["senderType"], m["content"], m["status"]) for m in messages] == [
        ("user", question, "delivered"),
        ("bot", answer, "delivered"),
    ]
    assert len(standin.requests) == 1  # one delivery, one model call
    pipe.chatd.stop.set()
