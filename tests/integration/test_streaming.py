"""Streamed replies end to end: a stand-in n8n (tests/sink.py) answers in n8n's "Streaming"
response mode; real WebSocket, SSE and long-poll clients of the session see each piece at once,
then the stored reply in the stream's place. For every fault of the stream: what the shopper saw
and what history holds, with nothing lost and nothing shown twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from trio_websocket import WebSocketConnection

from tests.chat import Session, new_session, send
from tests.integration.test_delivery import Pipeline, open_pipeline
from tests.sink import Reply, Stream, Wait, agent, chunk
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
