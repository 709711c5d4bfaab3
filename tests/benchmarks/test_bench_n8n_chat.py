"""n8n's chat widget's path against chatd's own, through the same `chatd serve`, same run.

    uv run pytest -m benchmark tests/benchmarks/test_bench_n8n_chat.py -s

What it measures: the time from a shopper's send to the bot's reply in the shopper's hands, the
sink answering at once (fastsink.py, {"output": "ok"}):
- @n8n/chat's path: `POST /api/n8n-chat` {action: sendMessage} until its {output} (one request
  that waits for the reply);
- chatd's own widget's path: `POST /api/chat/send` until the reply's new_message on the
  shopper's joined WebSocket.
In each of ROUNDS rounds, SHOPPERS shoppers on each path at the same time each send MESSAGES
messages back to back (THINK s apart): both paths share the same chatd, the same machine and the
same moments of its load (on a shared 2-core machine, rounds taken in turns measured the load's
swings more than the paths: p99 ratios from 0.46 to 2.34 run to run). Asserts p50 and p99 of the
n8n path <= RATIO_TARGET x chatd's own. The clients of both paths run in this process.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
import trio

from chatd.bench.stats import percentile
from tests.benchmarks.fastsink import fast_sink, load_average
from tests.benchmarks.server import chatd_process
from tests.chat import new_session
from tests.ws import join, open_ws, receive_type

SHOPPERS = 4  # on each path
MESSAGES = 25
THINK = 0.02  # seconds between a reply and the shopper's next message
ROUNDS = 3
RATIO_TARGET = 1.5
ENV = {
    "CHATD_N8N_CHAT__ENABLED": "true",
    "CHATD_WEBSOCKET__MAX_CONNECTIONS_PER_IP": "100000",
    "CHATD_WEBSOCKET__MESSAGES_PER_SECOND": "1000",
}

Shopper = Callable[[httpx.AsyncClient, list[float]], Awaitable[None]]


async def n8n_chat_shopper(client: httpx.AsyncClient, latencies: list[float]) -> None:
    widget = str(uuid.uuid4())
    for n in range(MESSAGES):
        body = {"action": "sendMessage", "sessionId": widget, "chatInput": f"message {n}"}
        began = time.perf_counter()
        response = await client.post("/api/n8n-chat", json=body)
        latencies.append(time.perf_counter() - began)
        assert response.json() == {"output": "ok"}, response.text
        await trio.sleep(THINK)


async def own_shopper(client: httpx.AsyncClient, latencies: list[float]) -> None:
    session = await new_session(client)
    async with open_ws(str(client.base_url).rstrip("/")) as ws:
        await join(ws, session)
        for n in range(MESSAGES):
            began = time.perf_counter()
            sent = await client.post(
                "/api/chat/send",
                headers=session.auth,
                json={"sessionId": session.id, "content": f"message {n}"},
            )
            assert sent.status_code == 200, sent.text
            while (await receive_type(ws, "new_message"))["message"]["senderType"] != "bot":
                pass
            latencies.append(time.perf_counter() - began)
            await trio.sleep(THINK)


async def run_round(url: str, samples: dict[str, list[float]]) -> None:
    """SHOPPERS shoppers of each path at once; their latencies added to `samples`."""
    shoppers: dict[str, Shopper] = {"n8n": n8n_chat_shopper, "own": own_shopper}
    limits = httpx.Limits(max_connections=2 * SHOPPERS, max_keepalive_connections=2 * SHOPPERS)
    async with (
        httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client,
        trio.open_nursery() as nursery,
    ):
        for path, shopper in shoppers.items():
            for _ in range(SHOPPERS):
                nursery.start_soon(shopper, client, samples.setdefault(path, []))


def ms(values: list[float], q: float) -> float:
    found = percentile(values, q)
    assert found is not None
    return found * 1000


@pytest.mark.benchmark
async def test_n8n_chat_send_to_output_against_own_send_and_websocket(database_url: str) -> None:
    before = os.getloadavg()
    samples: dict[str, list[float]] = {"n8n": [], "own": []}
    async with (
        fast_sink() as sink,
        chatd_process(database_url, CHATD_N8N__WEBHOOK_URL=f"{sink.url}/webhook", **ENV) as (
            url,
            _process,
        ),
    ):
        await run_round(url, {})  # warm-up
        for _ in range(ROUNDS):
            await run_round(url, samples)
    figures = {
        path: {
            "p50": round(ms(values, 0.50), 1),
            "p99": round(ms(values, 0.99), 1),
            "n": len(values),
        }
        for path, values in samples.items()
    }
    ratios = {q: figures["n8n"][q] / figures["own"][q] for q in ("p50", "p99")}
    print(f"\nsend -> reply in the shopper's hands, instant sink ({load_average(before)})")
    print(f"  @n8n/chat POST /api/n8n-chat -> {{output}}:   {json.dumps(figures['n8n'])}")
    print(f"  chatd POST /api/chat/send -> WebSocket:      {json.dumps(figures['own'])}")
    print(f"  ratio p50 {ratios['p50']:.2f}  p99 {ratios['p99']:.2f}  (target <= {RATIO_TARGET})")
    assert figures["n8n"]["n"] == figures["own"]["n"] == SHOPPERS * MESSAGES * ROUNDS
    assert ratios["p50"] <= RATIO_TARGET
    assert ratios["p99"] <= RATIO_TARGET
