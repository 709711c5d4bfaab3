"""An agent's reply reaches the shopper as fast as a bot's: the latency of each, same run.

Target (the issue): agent reply latency <= 1.2 x bot reply latency (p50), where

    bot   = POST /api/chat/send -> the bot's reply on the shopper's WebSocket, through the
            queue, a dispatcher and an instant n8n (tests/sink.py answering Reply at once);
    agent = POST /api/inbox/conversations/{id}/messages -> that reply on the shopper's WebSocket.

    uv run pytest -m benchmark tests/benchmarks/test_bench_agent_reply.py -s

chatd runs in this process (tests/conftest.start_chatd) on the test database; SESSIONS shoppers
each hold a joined WebSocket; ROUNDS messages each, one at a time per shopper, all shoppers at
once. The bot phase runs first, then an agent takes every conversation and replies as often.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest
import trio

from chatd.core.staff import Role
from tests.chat import Session, new_session, send
from tests.integration.test_delivery import open_pipeline
from tests.sink import Reply
from tests.staff import add_agent, sign_in
from tests.ws import join, open_ws, receive_type

SESSIONS = 20
ROUNDS = 20
RATIO_TARGET = 1.2

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(300)]


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def measure(
    url: str, chats: list[Session], sender: str, act: Callable[[Session, int], Awaitable[object]]
) -> list[float]:
    """Per shopper: do `act`, wait for the `sender`'s message on its WebSocket; ROUNDS times."""
    latencies: list[float] = []

    async def shopper(chat: Session) -> None:
        async with open_ws(url) as ws:
            await join(ws, chat)
            for n in range(ROUNDS):
                start = time.perf_counter()
                await act(chat, n)
                while (await receive_type(ws, "new_message", 15))["message"][
                    "senderType"
                ] != sender:
                    pass
                latencies.append(time.perf_counter() - start)

    async with trio.open_nursery() as nursery:
        for chat in chats:
            nursery.start_soon(shopper, chat)
    return latencies


async def test_agent_reply_latency_matches_the_bot(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipe = await open_pipeline(
        nursery, database_url, chat={"rate_limit_max": 100000}, log={"level": "warning"}
    )
    pipe.sink.behave(Reply("ok"))
    url = pipe.chatd.url
    async with pipe.chatd.client() as client:
        chats = [await new_session(client) for _ in range(SESSIONS)]

        async def shopper_sends(chat: Session, n: int) -> object:
            return await send(client, chat, f"bot round {n}")

        bot = await measure(url, chats, "bot", shopper_sends)

        agent = await add_agent(pipe.chatd.services.pool, "Anna", Role.AGENT)
        anna = await sign_in(pipe.chatd.client(), agent)
        for chat in chats:
            assert (await anna.post(f"/api/inbox/conversations/{chat.id}/take")).status_code == 200

        async def agent_replies(chat: Session, n: int) -> object:
            return await anna.post(
                f"/api/inbox/conversations/{chat.id}/messages", {"content": f"agent round {n}"}
            )

        human = await measure(url, chats, "agent", agent_replies)
        await anna.client.aclose()
    pipe.chatd.stop.set()

    ratio = p(human, 0.5) / p(bot, 0.5)
    print(f"\nReply latency, {SESSIONS} shoppers x {ROUNDS} rounds, instant n8n sink (ms)")
    print(f"  {'':<8} {'p50':>8} {'p90':>8} {'p99':>8}")
    for name, values in (("bot", bot), ("agent", human)):
        print(f"  {name:<8}" + "".join(f" {p(values, q) * 1000:8.2f}" for q in (0.5, 0.9, 0.99)))
    print(f"  agent / bot at p50: {ratio:.2f} (target <= {RATIO_TARGET})")
    assert len(bot) == len(human) == SESSIONS * ROUNDS
    assert ratio <= RATIO_TARGET
