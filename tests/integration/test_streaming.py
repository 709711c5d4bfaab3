"""Streamed replies end to end: a stand-in n8n (tests/sink.py) answers in n8n's "Streaming"
response mode; real WebSocket, SSE and long-poll clients of the session see each piece at once,
then the stored reply in the stream's place. For every fault of the stream: what the shopper saw
and what history holds, with nothing lost and nothing shown twice.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
import trio
from structlog.testing import capture_logs
from trio_websocket import WebSocketConnection

from tests.chat import Session, new_session, send
from tests.conftest import make_settings, start_chatd
from tests.integration.test_delivery import SECRET, Pipeline, _pool, open_pipeline
from tests.sink import Output, Received, Sink, Status, Stream, Wait, agent, chunk
from tests.sse import open_sse
from tests.ws import join, open_ws, receive

pytestmark = pytest.mark.timeout(60)

FALLBACK = "Sorry, I can't answer right now. Please try again in a moment."


@pytest.fixture
async def pipeline(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    pipe = await open_pipeline(
        nursery,
        database_url,
        chat={"rate_limit_max": 1000},
        n8n={"stream_idle_timeout_seconds": 1.0, "stream_max_seconds": 5.0},
    )
    yield pipe
    pipe.chatd.stop.set()


@pytest.fixture
async def patient(nursery: trio.Nursery, database_url: str) -> AsyncIterator[Pipeline]:
    """A pipeline whose streams may pause (the stand-in holds one while the test looks)."""
    pipe = await open_pipeline(
        nursery,
        database_url,
        chat={"rate_limit_max": 1000},
        n8n={"stream_idle_timeout_seconds": 20.0},
    )
    yield pipe
    pipe.chatd.stop.set()


@dataclass
class Seen:
    """What one client of the session received, in order (heartbeats left out)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    at: list[float] = field(default_factory=list)  # time.perf_counter() of each

    def of(self, *kinds: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] in kinds]

    def stream_events(self) -> list[tuple[str, ...]]:
        """Each stream event as (type, messageId, index or reason, text)."""
        out: list[tuple[str, ...]] = []
        for e in self.of("message_delta", "message_stream", "message_stream_end"):
            if e["type"] == "message_stream_end":
                out.append((e["type"], e["messageId"], e["reason"]))
            else:
                out.append((e["type"], e["messageId"], str(e["index"]), e["text"]))
        return out

    def bot_messages(self) -> list[dict[str, Any]]:
        return [
            e["message"] for e in self.of("new_message") if e["message"]["senderType"] != "user"
        ]

    def shown_text(self) -> dict[str, str]:
        """What a client following the protocol shows for each streamed reply at the end."""
        text: dict[str, str] = {}
        for e in self.of("message_delta", "message_stream", "message_stream_end"):
            if e["type"] == "message_stream_end":
                text.pop(e["messageId"], None)
            elif e["type"] == "message_stream":
                text[e["messageId"]] = e["text"]
            else:
                text[e["messageId"]] = text.get(e["messageId"], "") + e["text"]
        for message in self.bot_messages():
            text.pop(message["id"], None)
        return text


async def read_until(ws: WebSocketConnection, seen: Seen, done: Any, seconds: float = 10.0) -> Seen:
    with trio.fail_after(seconds):
        while not done(seen):
            event = await receive(ws, seconds)
            seen.events.append(event)
            seen.at.append(time.perf_counter())
    return seen


def bot_replies(count: int) -> Any:
    return lambda seen: len(seen.bot_messages()) >= count


@asynccontextmanager
async def joined(
    pipe: Pipeline, session: Session, last_seq: int = 0
) -> AsyncIterator[WebSocketConnection]:
    async with open_ws(pipe.chatd.url) as ws:
        await join(ws, session, last_seq)
        yield ws


async def history(pipe: Pipeline, session: Session) -> list[tuple[str, str, str]]:
    return [(m["senderType"], m["content"], m["status"]) for m in await pipe.messages(session)]


async def test_a_streamed_reply_is_shown_piece_by_piece_then_stored_once(
    pipeline: Pipeline,
) -> None:
    stream = Stream(agent("Your ", "order ", "ships ", "today."), gap=0.1)
    pipeline.sink.behave(stream)
    async with pipeline.chatd.client() as client:
        session = await new_session(client)
        async with joined(pipeline, session) as ws:
            sent = (await send(client, session, "Where is my order?")).json()
            seen = await read_until(ws, Seen(), bot_replies(1))
    deltas = seen.of("message_delta")
    (bot,) = seen.bot_messages()
    assert [(d["index"], d["text"]) for d in deltas] == [
        (0, "Your "),
        (1, "order "),
        (2, "ships "),
        (3, "today."),
    ]
    assert {d["messageId"] for d in deltas} == {bot["id"]}  # the stored reply takes its place
    assert {d["replyTo"] for d in deltas} == {sent["messageId"]}
    assert (bot["content"], bot["seq"], bot["messageType"]) == (
        "Your order ships today.",
        2,
        "text",
    )
    # The first piece reached the shopper before n8n had sent the last one.
    first_delta_at = seen.at[seen.events.index(deltas[0])]
    assert first_delta_at < stream.sent[-1]
    assert seen.of("message_stream_end") == []
    assert await history(pipeline, session) == [
        ("user", "Where is my order?", "delivered"),
        ("bot", "Your order ships today.", "delivered"),
    ]
    assert (await pipeline.job(sent["messageId"]))["status"] == "completed"


async def converse(
    pipe: Pipeline, text: str = "Where is my order?", replies: int = 1, seconds: float = 15.0
) -> tuple[Session, Seen]:
    """A shopper sends `text` with a WebSocket open; what it saw until `replies` bot messages."""
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        async with joined(pipe, session) as ws:
            await send(client, session, text)
            seen = await read_until(ws, Seen(), bot_replies(replies), seconds)
    return session, seen


def attempts(seen: Seen) -> list[list[str]]:
    """The streamed messages of each attempt, by messageId, in the order they began."""
    groups: list[list[str]] = [[]]
    for e in seen.of("message_delta", "message_stream_end", "new_message"):
        if e["type"] == "message_stream_end" and groups[-1]:
            groups.append([])
        elif e["type"] == "message_delta" and e["messageId"] not in groups[-1]:
            if any(e["messageId"] in group for group in groups):
                continue
            groups[-1].append(e["messageId"])
    return [group for group in groups if group]


GOOD = ["Your ", "order ", "ships ", "today."]


def split(line: bytes, inside: str) -> list[bytes]:
    """`line` in two network chunks, cut inside the UTF-8 bytes of the character `inside`."""
    cut = line.index(inside.encode()) + 1
    return [line[:cut], line[cut:]]


def good() -> Stream:
    return Stream(agent(*GOOD), gap=0.02)


FAULTS: dict[str, tuple[Stream, str]] = {
    # n8n reports a node's failure while the reply is being written, and the response ends.
    "error-chunk": (
        Stream([*agent("Your ", "ord")[:3], chunk("error", "agent", "Rate limit reached")]),
        "n8n node 'agent' failed: Rate limit reached",
    ),
    "cut-after-3-chunks": (
        Stream(agent("Your ", "ord", "er")[:3], then="cut"),
        "the connection was cut",
    ),
    "stall": (Stream(agent("Your ", "ord")[:2], then="hang"), "nothing came for 1s"),
    "endless": (
        Stream([chunk("begin"), chunk("item", "agent", "la ")], gap=0.05, then="endless"),
        "the answer ran longer than 5s",
    ),
    "non-json-line": (
        Stream([*agent("Your ")[:2], b"<html>Bad gateway</html>\n"]),
        "line 3 of the stream: malformed JSON",
    ),
    "invalid-utf8-split": (
        Stream(
            [
                *agent("Your ")[:2],
                *split(chunk("item", "agent", "café ~~").replace(b"~~", b"\xff\xfe"), "é"),
                chunk("end"),
            ]
        ),
        "line 3 of the stream is not valid UTF-8",
    ),
    "one-megabyte-line": (
        Stream(
            [
                *agent("Your ")[:2],
                b'{"type":"item","content":"',
                *[b"x" * 65536] * 16,
                b'"}\n',
                chunk("end"),
            ]
        ),
        "a line of the stream is longer than 65536 bytes",
    ),
    "begin-without-end": (  # then a clean end of the response
        Stream(agent("Your ", "order")[:-1]),
        "the reply of n8n node 'agent' began and never ended",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
async def test_a_failed_stream_is_withdrawn_and_the_retry_shown_once(
    pipeline: Pipeline, fault: str
) -> None:
    stream, reason = FAULTS[fault]
    pipeline.sink.queue(stream)
    pipeline.sink.behave(good())
    with capture_logs() as logs:
        session, seen = await converse(pipeline)
    (failure,) = [log for log in logs if log["event"] == "dispatch_stream_failed"]
    assert reason in failure["reason"]
    (bot,) = seen.bot_messages()
    assert bot["content"] == "".join(GOOD)
    # The failed attempt showed its pieces, then withdrew them all, before the retry's first.
    failed, retried = attempts(seen)
    assert retried == [bot["id"]]
    ends = seen.of("message_stream_end")
    assert [(e["messageId"], e["reason"]) for e in ends] == [(m, "failed") for m in failed]
    first_retry = next(i for i, e in enumerate(seen.events) if e.get("messageId") == bot["id"])
    assert seen.events.index(ends[-1]) < first_retry
    assert seen.shown_text() == {}  # nothing left on screen but the stored reply
    assert await history(pipeline, session) == [
        ("user", "Where is my order?", "delivered"),
        ("bot", "".join(GOOD), "delivered"),
    ]
    assert len(pipeline.sink.requests) == 2


async def test_when_every_attempt_fails_the_fallback_is_the_one_reply(pipeline: Pipeline) -> None:
    pipeline.sink.behave(Stream(agent("Your ", "ord")[:3], then="cut"))
    session, seen = await converse(pipeline)
    assert [m["content"] for m in seen.bot_messages()] == [FALLBACK]
    assert len(attempts(seen)) == 3  # each shown, each withdrawn
    assert len(seen.of("message_stream_end")) == 3
    assert seen.shown_text() == {}
    assert await history(pipeline, session) == [
        ("user", "Where is my order?", "failed"),
        ("bot", FALLBACK, "delivered"),
    ]


async def test_several_runs_become_several_messages_in_the_order_they_began(
    pipeline: Pipeline,
) -> None:
    interleaved = [
        chunk("begin", "triage"),
        chunk("begin", "writer"),
        chunk("item", "writer", "Second "),
        chunk("item", "triage", "First "),
        chunk("item", "writer", "message."),
        chunk("item", "triage", "message."),
        chunk("end", "writer"),
        chunk("end", "triage"),
        *agent("After ", "a tool.", run=1, node="triage"),
        chunk("begin", "writer", run=1),  # a run with nothing to say: never stored
        chunk("item", "writer", "\n", run=1),
        chunk("end", "writer", run=1),
    ]
    pipeline.sink.behave(Stream(interleaved, gap=0.02))
    session, seen = await converse(pipeline, replies=3)
    texts = ["First message.", "Second message.", "After a tool."]
    assert [m["content"] for m in seen.bot_messages()] == texts
    assert [m["seq"] for m in seen.bot_messages()] == [2, 3, 4]
    streamed = {e["messageId"] for e in seen.of("message_delta")}
    assert {m["id"] for m in seen.bot_messages()} < streamed  # and the empty run's
    (empty,) = streamed - {m["id"] for m in seen.bot_messages()}
    assert [(e["messageId"], e["reason"]) for e in seen.of("message_stream_end")] == [
        (empty, "empty")
    ]
    assert seen.shown_text() == {}
    assert [content for _, content, _ in await history(pipeline, session)] == [
        "Where is my order?",
        *texts,
    ]


async def test_a_character_split_between_network_chunks_arrives_whole(pipeline: Pipeline) -> None:
    pipeline.sink.behave(
        Stream([chunk("begin"), *split(chunk("item", "agent", "Grüße"), "ü"), chunk("end")])
    )
    _session, seen = await converse(pipeline)
    assert [(d["index"], d["text"]) for d in seen.of("message_delta")] == [(0, "Grüße")]
    assert [m["content"] for m in seen.bot_messages()] == ["Grüße"]


async def test_an_error_n8n_goes_on_after_does_not_fail_the_reply(pipeline: Pipeline) -> None:
    # An AI tool failed; n8n reports it and goes on (tools continue by default): the agent's
    # next model call answers.
    stream = [
        *agent("", run=0),
        chunk("error", "order lookup", "404 order not found"),
        *agent("I could not ", "find that order.", run=1),
    ]
    pipeline.sink.behave(Stream(stream))
    _session, seen = await converse(pipeline)
    assert [m["content"] for m in seen.bot_messages()] == ["I could not find that order."]
    assert len(pipeline.sink.requests) == 1


# -- joining and resuming mid-stream -------------------------------------------------------------

HELD = ["Your ", "order ", "ships "]  # streamed before the stand-in waits for sink.release()
REST = ["to", "day."]


def held_stream() -> Stream:
    return Stream(
        [chunk("begin"), *[chunk("item", "agent", t) for t in HELD], Wait(),
         *[chunk("item", "agent", t) for t in REST], chunk("end")]
    )  # fmt: skip


def pieces(seen: Seen) -> list[tuple[str, int, str]]:
    """(type, index, text) of each stream event of one reply, in order."""
    return [(e["type"], e["index"], e["text"]) for e in seen.of("message_delta", "message_stream")]


async def test_a_second_tab_and_a_reconnecting_one_get_the_text_so_far_then_the_rest(
    patient: Pipeline,
) -> None:
    patient.sink.behave(held_stream())
    async with patient.chatd.client() as client:
        session = await new_session(client)
        async with joined(patient, session) as first, joined(patient, session) as leaving:
            await send(client, session, "Where is my order?")
            early = await read_until(first, Seen(), lambda s: len(s.of("message_delta")) == 3)
            gone = await read_until(leaving, Seen(), lambda s: len(s.of("message_delta")) == 2)
        # `leaving` hung up after two pieces; it comes back, as does a new tab, mid-stream.
        async with (
            joined(patient, session, last_seq=1) as back,
            joined(patient, session, last_seq=0) as second,
            joined(patient, session, last_seq=1) as third,
        ):
            resumed = [await read_until(ws, Seen(), lambda s: bool(s.of("message_stream")))
                       for ws in (back, second, third)]  # fmt: skip
            patient.sink.release()
            for ws, seen in zip((back, second, third), resumed, strict=True):
                await read_until(ws, seen, bot_replies(1))
    (bot,) = resumed[0].bot_messages()
    text = "".join(HELD + REST)
    assert bot["content"] == text
    assert [d["index"] for d in early.of("message_delta")] == [0, 1, 2]
    assert [d["index"] for d in gone.of("message_delta")] == [0, 1]
    for seen in resumed:
        # The text so far once, then exactly the pieces after it: no gap, no repeat.
        assert pieces(seen) == [
            ("message_stream", 2, "".join(HELD)),
            ("message_delta", 3, "to"),
            ("message_delta", 4, "day."),
        ]
        assert seen.bot_messages() == [bot]
        assert seen.of("message_stream")[0]["messageId"] == bot["id"]
        assert seen.shown_text() == {}
    # The new tab got the stored messages first, then the stream.
    kinds = [e["type"] for e in resumed[1].events]
    assert kinds.index("new_message") < kinds.index("message_stream")


async def test_an_sse_client_resuming_mid_stream_gets_the_text_so_far_then_the_rest(
    patient: Pipeline,
) -> None:
    patient.sink.behave(held_stream())
    async with patient.chatd.client() as client:
        session = await new_session(client)
        async with joined(patient, session) as ws:
            await send(client, session, "Where is my order?")
            await read_until(ws, Seen(), lambda s: len(s.of("message_delta")) == 3)
        path = f"/api/chat/events/{session.id}"
        async with open_sse(patient.chatd.url, path, {**session.auth, "Last-Event-ID": "1"}) as sse:
            snapshot = await sse.next()
            patient.sink.release()
            rest = []
            while (event := await sse.next()) is not None and event.type != "new_message":
                rest.append(event)
    assert snapshot is not None
    assert event is not None
    assert (snapshot.id, snapshot.type, snapshot.data["index"]) == (None, "message_stream", 2)
    assert snapshot.data["text"] == "".join(HELD)
    deltas = [e for e in rest if e.type == "message_delta"]
    assert [(e.id, e.data["index"], e.data["text"]) for e in deltas] == [
        (None, 3, "to"),
        (None, 4, "day."),
    ]
    assert (event.id, event.data["message"]["id"]) == ("2", snapshot.data["messageId"])
    assert event.data["message"]["content"] == "".join(HELD + REST)


async def poll(
    pipe: Pipeline, session: Session, after: int, version: int, wait: int = 5
) -> dict[str, Any]:
    async with pipe.chatd.client() as client:  # its timeout (10 s) outlasts the wait
        url = (
            f"/api/chat/messages/{session.id}?afterSeq={after}&wait={wait}&streamVersion={version}"
        )
        response = await client.get(url, headers=session.auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_long_poll_answers_each_change_of_the_streams_with_all_of_them(
    patient: Pipeline,
) -> None:
    patient.sink.behave(held_stream())
    async with patient.chatd.client() as client:
        session = await new_session(client)
        quiet = await poll(patient, session, after=0, version=0, wait=1)
        assert (quiet["streaming"], quiet["streamVersion"]) == ([], 0)
        assert [m["seq"] for m in quiet["messages"]] == []
        async with joined(patient, session) as ws:
            sent = (await send(client, session, "Where is my order?")).json()
            await read_until(ws, Seen(), lambda s: len(s.of("message_delta")) == 3)
    # The client has seq 1 and no streams (version 0): answered at once, with the text so far.
    started = trio.current_time()
    first = await poll(patient, session, after=1, version=0)
    assert trio.current_time() - started < 1
    (reply,) = first["streaming"]
    assert reply == {
        "messageId": reply["messageId"],
        "replyTo": sent["messageId"],
        "index": 2,
        "text": "".join(HELD),
    }
    assert first["messages"] == []
    assert first["streamVersion"] not in (0, None)
    # Nothing changes: the same version waits (here until `wait` runs out).
    same = await poll(patient, session, after=1, version=first["streamVersion"], wait=1)
    assert (same["streaming"], same["streamVersion"]) == (
        first["streaming"],
        first["streamVersion"],
    )
    # The rest streams and is stored: the waiting poll answers; polling on, the reply arrives
    # and the stream is gone.
    async with trio.open_nursery() as nursery:
        answers: list[dict[str, Any]] = []

        async def follow() -> None:
            version, after = first["streamVersion"], 1
            while not any(m["senderType"] == "bot" for a in answers for m in a["messages"]):
                answers.append(await poll(patient, session, after=after, version=version))
                version = answers[-1]["streamVersion"]

        nursery.start_soon(follow)
        await trio.sleep(0.3)
        patient.sink.release()
    final = answers[-1]
    assert [m["content"] for m in final["messages"]] == ["".join(HELD + REST)]
    assert final["messages"][0]["id"] == reply["messageId"]
    assert (final["streaming"], final["streamVersion"]) == ([], 0)
    for answer in answers[:-1]:  # each a snapshot of the whole text so far
        for view in answer["streaming"]:
            assert "".join(HELD + REST).startswith(view["text"])


async def test_long_poll_refuses_a_bad_stream_version(patient: Pipeline) -> None:
    async with patient.chatd.client() as client:
        session = await new_session(client)
        url = f"/api/chat/messages/{session.id}"
        for query, field in [
            ("?afterSeq=0&streamVersion=-1", "streamVersion"),
            ("?afterSeq=0&streamVersion=x", "streamVersion"),
            ("?afterSeq=0&streamVersion=9007199254740992", "streamVersion"),
            ("?streamVersion=0", "streamVersion"),
        ]:
            response = await client.get(url + query, headers=session.auth)
            assert response.status_code == 400, query
            assert response.json()["error"]["field"] == field
        plain = (await client.get(url + "?afterSeq=0", headers=session.auth)).json()
        assert set(plain) == {"messages", "pagination"}  # without streamVersion: as before


# -- across processes ------------------------------------------------------------------------------


async def test_a_client_of_another_process_gets_the_pieces_in_batches_and_the_reply(
    nursery: trio.Nursery, database_url: str
) -> None:
    reader = await open_pipeline(nursery, database_url, n8n={"stream_idle_timeout_seconds": 20})
    tokens = [f"w{n} " for n in range(40)]
    items = [chunk("item", "agent", token) for token in tokens]
    reader.sink.behave(
        Stream([chunk("begin"), *items[:20], Wait(), *items[20:], chunk("end")], gap=0.01)
    )
    other_pool = await nursery.start(_pool, database_url)
    other = await start_chatd(nursery, make_settings(database_url), other_pool)  # no dispatch
    async with reader.chatd.client() as client:
        session = await new_session(client)
        async with open_ws(other.url) as far, open_ws(reader.chatd.url) as near:
            await join(far, session)
            await join(near, session)
            await send(client, session, "Where is my order?")
            seen_far = await read_until(far, Seen(), lambda s: len(s.of("message_delta")) == 20)
            # A tab joining the far process mid-stream gets the text so far from its memory.
            async with open_ws(other.url) as late:
                await join(late, session, last_seq=1)
                seen_late = await read_until(late, Seen(), lambda s: bool(s.of("message_stream")))
                reader.sink.release()
                await read_until(late, seen_late, bot_replies(1))
            await read_until(far, seen_far, bot_replies(1))
            seen_near = await read_until(near, Seen(), bot_replies(1))
    text = "".join(tokens)
    for seen in (seen_far, seen_near):
        assert [(d["index"], d["text"]) for d in seen.of("message_delta")] == list(
            enumerate(tokens)
        )
        assert [m["content"] for m in seen.bot_messages()] == [text]
        # Every piece came before the stored reply.
        assert seen.events.index(seen.of("new_message")[-1]) > seen.events.index(
            seen.of("message_delta")[-1]
        )
    assert pieces(seen_late)[0] == ("message_stream", 19, "".join(tokens[:20]))
    assert [i for _, i, _ in pieces(seen_late)[1:]] == list(range(20, 40))
    assert seen_late.shown_text() == {}
    relay = reader.chatd.services.state.relay
    assert relay is not None
    # 40 pieces reached the other process in a few notifications, not one each.
    sent = relay.statistics()
    assert sent.pieces == 40
    assert sent.notifications < 20


# -- the built-in demo bot -------------------------------------------------------------------------


async def test_the_demo_bot_streams_its_text_replies_and_answers_with_buttons_whole(
    nursery: trio.Nursery, database_url: str
) -> None:
    settings = make_settings(database_url, queue={"dispatch": True, "poll_interval_seconds": 0.2})
    demo = await start_chatd(nursery, settings, await nursery.start(_pool, database_url))
    async with demo.client() as client:
        session = await new_session(client)
        async with open_ws(demo.url) as ws:
            await join(ws, session)
            await send(client, session, "Track my order")
            streamed = await read_until(ws, Seen(), bot_replies(1))
            await send(client, session, "hello")
            whole = await read_until(ws, Seen(), bot_replies(1))
    (reply,) = streamed.bot_messages()
    assert (
        reply["content"]
        == "Sure: what's your order number? (Any number works in this demo, e.g. 12345.)"
    )
    deltas = streamed.of("message_delta")
    assert len(deltas) == len(reply["content"].split())  # word by word
    assert {d["messageId"] for d in deltas} == {reply["id"]}
    assert "".join(d["text"] for d in deltas) == reply["content"]
    (greeting,) = whole.bot_messages()
    assert greeting["messageType"] == "quick_reply"
    assert greeting["metadata"]["quickReplies"]
    assert whole.of("message_delta") == []


# -- n8n's Chat Trigger ----------------------------------------------------------------------------

PASSWORD = "p@ss:wörd-0123456789"
KEY = "k3y: 0123456789abcdef"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def guarded(expected: dict[str, str], answer: Stream | Output) -> Any:
    """The stand-in's answer if the request carries `expected` headers, else n8n's 401."""

    def rule(received: Received) -> Stream | Output | Status:
        if all(received.headers.get(k.lower()) == v for k, v in expected.items()):
            return answer
        return Status(401, b"Authorization is required!")

    return rule


@pytest.mark.parametrize("response_mode", ["last-node", "streaming"])
@pytest.mark.parametrize("auth", ["basic-in-url", "basic-keys", "header-keys"])
async def test_a_chat_trigger_with_auth_answers_whole_or_streamed(
    nursery: trio.Nursery, database_url: str, auth: str, response_mode: str
) -> None:
    sink = await Sink.start(nursery)
    path = "/webhook/1f0c2b3a-chat-trigger-id/chat"
    n8n: dict[str, object] = {"mode": "chat_trigger", "webhook_secret": SECRET}
    if auth == "basic-in-url":
        n8n["webhook_url"] = (
            sink.url.replace("http://", f"http://chatd:{quote(PASSWORD, safe='')}@") + path
        )
        expected = {"Authorization": basic("chatd", PASSWORD)}
    elif auth == "basic-keys":
        n8n |= {
            "webhook_url": sink.url + path,
            "basic_auth_user": "chatd",
            "basic_auth_password": PASSWORD,
        }
        expected = {"Authorization": basic("chatd", PASSWORD)}
    else:
        n8n |= {
            "webhook_url": sink.url + path,
            "auth_header_name": "X-Shop-Key",
            "auth_header_value": KEY,
        }
        expected = {"X-Shop-Key": KEY}
    text = "Yes, we ship to Norway."
    answer = (
        Output(text)
        if response_mode == "last-node"
        else Stream(agent("Yes, ", "we ship ", "to Norway."))
    )
    sink.behave(guarded(expected, answer))
    settings = make_settings(
        database_url, queue={"dispatch": True, "poll_interval_seconds": 0.2}, n8n=n8n
    )
    with capture_logs() as logs:
        chatd = await start_chatd(nursery, settings, await nursery.start(_pool, database_url))
        async with chatd.client() as client:
            session = await new_session(client)
            async with open_ws(chatd.url) as ws:
                await join(ws, session)
                await send(client, session, "Do you ship to Norway?")
                seen = await read_until(ws, Seen(), bot_replies(1))
        chatd.stop.set()
    assert [m["content"] for m in seen.bot_messages()] == [text]
    assert len(seen.of("message_delta")) == (3 if response_mode == "streaming" else 0)
    (request,) = sink.requests
    assert request.path == path
    assert request.json["chatInput"] == "Do you ship to Norway?"
    assert request.json["sessionId"] == session.id
    assert request.headers["x-webhook-secret"] == SECRET
    # The password went to n8n, and nowhere else: not in a log line, not in the job's record.
    assert PASSWORD not in json.dumps(logs, default=str)
    assert KEY not in json.dumps(logs, default=str)
    async with chatd.services.pool.connection() as conn:
        rows = await (await conn.execute("SELECT webhook_url FROM chat_webhook_queue")).fetchall()
    assert [row["webhook_url"] for row in rows] == [sink.url + path]


# -- the lease, and shutdown ----------------------------------------------------------------------


async def test_a_stream_longer_than_the_lease_keeps_it(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(nursery, database_url, queue={"lease_seconds": 0.6})
    pipe.sink.behave(Stream(agent(*[f"w{n} " for n in range(20)]), gap=0.1))  # 2 s
    _session, seen = await converse(pipe)
    assert len(seen.of("message_delta")) == 20
    assert len(seen.bot_messages()) == 1
    assert len(pipe.sink.requests) == 1  # never rescued, never sent twice
    dispatcher = pipe.chatd.services.state.dispatcher
    assert dispatcher is not None
    assert dispatcher.statistics().rescued == 0
    pipe.chatd.stop.set()


async def test_a_stream_may_pause_longer_than_the_timeout_for_a_whole_reply(
    nursery: trio.Nursery, database_url: str
) -> None:
    # An agent calling a tool writes nothing for a while: only the idle timeout bounds that.
    pipe = await open_pipeline(
        nursery, database_url, n8n={"timeout_seconds": 0.5, "stream_idle_timeout_seconds": 5}
    )
    pipe.sink.behave(Stream(agent("Your ", "order."), gap=1.2))
    with capture_logs() as logs:
        _session, seen = await converse(pipe)
    assert [log for log in logs if log["event"] == "dispatch_stream_failed"] == []
    assert [m["content"] for m in seen.bot_messages()] == ["Your order."]
    assert len(pipe.sink.requests) == 1
    pipe.chatd.stop.set()


RESCUE = """UPDATE chat_webhook_queue SET status = 'pending', lease_id = NULL, locked_until = NULL,
    next_retry_at = now(), last_error = 'rescued by the test' WHERE status = 'processing'"""


async def test_a_stream_whose_lease_was_taken_stops_and_withdraws_what_it_showed(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(nursery, database_url, queue={"lease_seconds": 0.6})
    pipe.sink.queue(Stream(agent(*[f"w{n} " for n in range(100)]), gap=0.05))
    pipe.sink.behave(good())
    async with pipe.chatd.client() as client:
        session = await new_session(client)
        async with joined(pipe, session) as ws:
            await send(client, session, "Where is my order?")
            seen = await read_until(ws, Seen(), lambda s: len(s.of("message_delta")) == 3)
            async with pipe.chatd.services.pool.connection() as conn:
                await conn.execute(RESCUE)  # what a rescuer does to a job it thinks abandoned
            await read_until(ws, seen, bot_replies(1))
    (bot,) = seen.bot_messages()
    assert bot["content"] == "".join(GOOD)
    failed, retried = attempts(seen)
    assert retried == [bot["id"]]
    # Withdrawn by its reader ("failed"), or, if the rescuer's attempt began streaming first,
    # replaced by it ("superseded"); never shown beside it.
    ends = seen.of("message_stream_end")
    assert {e["messageId"] for e in ends} == set(failed)
    assert {e["reason"] for e in ends} <= {"failed", "superseded"}
    first_retry = next(i for i, e in enumerate(seen.events) if e.get("messageId") == bot["id"])
    assert seen.events.index(ends[0]) < first_retry
    later = [e for e in seen.events[first_retry:] if e["type"] == "message_delta"]
    assert {e["messageId"] for e in later} == {bot["id"]}
    assert seen.shown_text() == {}
    assert [c for _, c, _ in await history(pipe, session)] == ["Where is my order?", bot["content"]]
    dispatcher = pipe.chatd.services.state.dispatcher
    assert dispatcher is not None
    assert dispatcher.statistics().lost_leases == 1
    pipe.chatd.stop.set()


async def test_a_stream_cut_by_shutdown_is_withdrawn_everywhere_and_its_job_released(
    nursery: trio.Nursery, database_url: str
) -> None:
    reader = await open_pipeline(
        nursery,
        database_url,
        server={"shutdown_grace_seconds": 0.3},
        n8n={"stream_idle_timeout_seconds": 20},
    )
    reader.sink.behave(Stream([chunk("begin"), chunk("item", "agent", "Your "), Wait()]))
    other_pool = await nursery.start(_pool, database_url)
    other = await start_chatd(nursery, make_settings(database_url), other_pool)
    async with reader.chatd.client() as client:
        session = await new_session(client)
        sent = (await send(client, session, "Where is my order?")).json()
    async with open_ws(other.url) as ws:
        await join(ws, session)
        # The first piece as a delta, or in the snapshot if it came before the join.
        shown = ("message_delta", "message_stream")
        seen = await read_until(ws, Seen(), lambda s: bool(s.of(*shown)))
        reader.chatd.stop.set()
        await read_until(ws, seen, lambda s: bool(s.of("message_stream_end")))
    ((_, message_id, reason),) = [e for e in seen.stream_events() if e[0] == "message_stream_end"]
    assert (message_id, reason) == (seen.of(*shown)[0]["messageId"], "stopping")
    job = await reader.wait_job(sent["messageId"], "pending")
    assert job["attempts"] == 0  # released untouched: the next process starts afresh
    reader.sink.release()
