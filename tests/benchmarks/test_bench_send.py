"""POST /api/chat/send requests/s against GET /livez (hello world) of the same server, same run.

32 keep-alive connections, many sessions; target ratio >= 0.4, with p50/p99 latency.
Run: uv run pytest -m benchmark tests/benchmarks/test_bench_send.py -s
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.benchmarks.loadgen import LoadResult, new_sessions, request_bytes, run_load
from tests.benchmarks.server import chatd_process

CONNECTIONS = 32
SESSIONS = 320
SECONDS = 6.0


def _row(name: str, result: LoadResult) -> str:
    return (
        f"  {name:<22} {result.rate:>9.0f} req/s   p50 {result.percentile(0.5) * 1000:6.2f} ms"
        f"   p99 {result.percentile(0.99) * 1000:6.2f} ms   errors {result.errors or 0}"
    )


@pytest.mark.benchmark
async def test_send_rate_against_hello_world(database_url: str) -> None:
    # The API path alone: delivery has its own benchmark (test_bench_drain.py).
    async with chatd_process(database_url, CHATD_QUEUE__DISPATCH="false") as (url, _process):
        host = urlsplit(url).netloc
        sessions = await new_sessions(url, SESSIONS)

        hello_request = request_bytes("GET", "/livez", host)

        def send_request(n: int) -> bytes:
            sid, token = sessions[n % SESSIONS]
            body = json.dumps({"sessionId": sid, "content": f"benchmark message {n}"}).encode()
            return request_bytes(
                "POST",
                "/api/chat/send",
                host,
                body,
                {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )

        await run_load(
            url, lambda n: hello_request, connections=CONNECTIONS, duration=1.0
        )  # warm-up
        hello = await run_load(
            url, lambda n: hello_request, connections=CONNECTIONS, duration=SECONDS
        )
        send = await run_load(url, send_request, connections=CONNECTIONS, duration=SECONDS)
        hello_again = await run_load(
            url, lambda n: hello_request, connections=CONNECTIONS, duration=SECONDS
        )

    baseline = (hello.rate + hello_again.rate) / 2
    ratio = send.rate / baseline
    print(
        f"\nPOST /api/chat/send vs GET /livez, {CONNECTIONS} keep-alive connections, "
        f"{SESSIONS} sessions, {SECONDS:g} s each"
    )
    print(_row("GET /livez", hello))
    print(_row("POST /api/chat/send", send))
    print(_row("GET /livez (again)", hello_again))
    print(f"  ratio send / hello = {ratio:.2f}  (target >= 0.40)")
    assert not send.errors
    assert not hello.errors
    assert ratio >= 0.4
