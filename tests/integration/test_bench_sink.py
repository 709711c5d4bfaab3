"""`chatd bench --sink`'s server: the reply n8n would send, a fixed delay, injected failures."""

from __future__ import annotations

from functools import partial

import httpx
import trio

from chatd.bench.sink import SinkConfig, SinkStats, serve_sink
from chatd.core.replies import parse_reply_body


async def test_replies_like_n8n_after_the_delay_and_fails_on_demand(
    nursery: trio.Nursery,
) -> None:
    fine, failing = SinkStats(), SinkStats()
    slow_url = await nursery.start(partial(serve_sink, "127.0.0.1", 0, SinkConfig(delay=0.2), fine))
    failing_url = await nursery.start(
        partial(serve_sink, "127.0.0.1", 0, SinkConfig(failure_rate=1.0), failing)
    )
    async with httpx.AsyncClient() as client:
        started = trio.current_time()
        answers = [(await client.post(f"{slow_url}/webhook", json={"n": n})) for n in range(2)]
        elapsed = trio.current_time() - started
        refused = await client.post(f"{failing_url}/webhook", content=b"{}")
    assert [a.status_code for a in answers] == [200, 200]
    reply = parse_reply_body(answers[0].content, mode="webhook")
    assert reply is not None
    assert reply.content.startswith("Thanks!")
    assert elapsed >= 0.4  # each answer waited its delay, on one keep-alive connection
    assert refused.status_code == 503
    assert (fine.requests, fine.failed, failing.requests, failing.failed) == (2, 0, 1, 1)
