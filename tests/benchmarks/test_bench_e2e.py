"""End to end, as an operator measures it: `chatd serve` + `chatd bench --sink` + `chatd bench`,
each its own process, on this machine.

    uv run pytest -m benchmark tests/benchmarks/test_bench_e2e.py -s

What it asserts:
- sustained messages/s, HTTP send -> queue -> sink's synchronous reply -> bot reply on the
  shopper's WebSocket (`chatd bench throughput`), against the same server's hello-world
  requests/s (GET /livez, raw keep-alive load, measured before and after in the same run), with
  0 lost and 0 duplicated. The ratio's old target, 0.30, is out of reach on this 2-core machine
  (the floor of a message's cost: tests/benchmarks/README.md); RATIO_FLOOR is a regression floor
  instead, set from runs of the code as it was when the target was retired (0.13-0.22 over
  earlier rounds, 0.15 in the round that set it): about 3/4 of the lowest, so a failure means
  something got slower, not that the machine was busy;
- at half that rate (`chatd bench conversation`, arrivals paced so messages come at half the
  sustained rate), p99 send -> reply on the WebSocket <= 50 ms beyond the sink's delay (0 here).
The bench client's own CPU counts against chatd here (2 cores: chatd, PostgreSQL, the sink and
the bench share them), so the figures are what a shop sees from one machine, not chatd alone.

Where the time goes: CPU ms per request (hello) or per message (throughput) of chatd, the
client (the load generator in this process for hello; for throughput `chatd bench`'s own report,
over its run without its start-up), PostgreSQL and the sink, from /proc, and the share of one
core each used.

The scale-out figure (docs/performance.md): the same throughput run against two chatd processes on the same
database (two bench processes, one per chatd), against one.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
import pytest
import trio

from tests.benchmarks.fastsink import cpu_between, cpu_seconds, load_average, postgres_cpu
from tests.benchmarks.loadgen import LoadResult, request_bytes, run_load
from tests.benchmarks.server import bench_sink, chatd_process, run_bench

SHOPPERS = 32  # as many as the hello load's connections; 16 left chatd waiting ~12 % of the time
SECONDS = 10.0
HELLO_CONNECTIONS = 32
HELLO_SECONDS = 5.0
LATENCY_TARGET_MS = 50.0
RATIO_FLOOR = 0.10  # a regression floor, not a target: see the module docstring
LOAD = {  # a load test from one address: lift the per-session and per-address limits
    "CHATD_WEBSOCKET__MAX_CONNECTIONS_PER_IP": "100000",
    "CHATD_WEBSOCKET__MESSAGES_PER_SECOND": "1000",
}


T = TypeVar("T")


@asynccontextmanager
async def chatd_with_sink(
    database_url: str, sink: str, **env: str
) -> AsyncIterator[tuple[str, trio.Process]]:
    async with chatd_process(
        database_url, CHATD_N8N__WEBHOOK_URL=f"{sink}/webhook", **LOAD, **env
    ) as (url, process):
        yield url, process


@dataclass
class Cpu:
    """CPU seconds each part used during one measured step, and the step's wall time."""

    chatd: float
    client: float
    postgres: float
    sink: float
    seconds: float

    def per(self, count: float) -> str:
        parts = ("chatd", "client", "postgres", "sink")
        costs = "  ".join(f"{name} {getattr(self, name) / count * 1000:.2f}" for name in parts)
        shares = ", ".join(f"{name} {getattr(self, name) / self.seconds:.0%}" for name in parts)
        return f"CPU ms each: {costs}  (of one core: {shares})"


async def metered(
    step: Callable[[], Awaitable[T]], *, database_url: str, chatd: int, sink: int
) -> tuple[T, Cpu]:
    with psycopg.connect(database_url, autocommit=True) as conn:

        def snapshot() -> tuple[float, float, dict[int, float], float]:
            return cpu_seconds(chatd), time.process_time(), postgres_cpu(conn), cpu_seconds(sink)

        start, began = snapshot(), time.monotonic()
        result = await step()
        end, seconds = snapshot(), time.monotonic() - began
    cpu = Cpu(
        chatd=end[0] - start[0],
        client=end[1] - start[1],
        postgres=cpu_between(start[2], end[2]),
        sink=end[3] - start[3],
        seconds=seconds,
    )
    return result, cpu


async def hello(url: str, seconds: float = HELLO_SECONDS) -> LoadResult:
    request = request_bytes("GET", "/livez", urlsplit(url).netloc)
    return await run_load(url, lambda n: request, connections=HELLO_CONNECTIONS, duration=seconds)


async def throughput(url: str, shoppers: int = SHOPPERS) -> dict[str, Any]:
    report, _ = await run_bench(
        "throughput", "--url", url, "--duration", str(SECONDS),
        "--concurrency", str(shoppers), "--messages", "20",
    )  # fmt: skip
    return report


def line(name: str, report: dict[str, Any]) -> str:
    reply, ack = report["reply_ms"], report["ack_ms"]
    return (
        f"  {name:<34} {report['throughput']:8.1f} msg/s   reply p50 {reply['p50']} ms"
        f" p99 {reply['p99']} ms   ack p50 {ack['p50']} ms   sent {report['sent']}"
        f" replies {report['replies']} lost {report['lost']} dup {report['duplicated']}"
        f" errors {report['errors'] or 0}"
    )


@pytest.mark.benchmark
async def test_end_to_end_messages_per_second_and_latency_at_half_rate(
    database_url: str,
) -> None:
    before = os.getloadavg()
    async with (
        bench_sink() as (sink, sink_process),
        chatd_with_sink(database_url, sink) as (url, process),
    ):
        measure = partial(
            metered, database_url=database_url, chatd=process.pid, sink=sink_process.pid
        )
        await hello(url, seconds=1.0)  # warm-up
        hello_first, hello_cpu = await measure(lambda: hello(url))
        sustained, cpu = await measure(lambda: throughput(url))
        # The bench client's CPU and time over its run, as it reports them (not its start-up).
        sustained_cpu = replace(cpu, client=sustained["cpu_seconds"], seconds=sustained["seconds"])
        hello_again = await hello(url)
        half = sustained["throughput"] / 2
        # Conversations of 5 messages, 1 s apart: arrivals at half/5 per second give half msg/s.
        paced, _ = await run_bench(
            "conversation", "--url", url, "--rate", f"{half / 5:.2f}",
            "--duration", str(SECONDS), "--messages", "5", "--think", "1",
        )  # fmt: skip
    baseline = (hello_first.rate + hello_again.rate) / 2
    ratio = sustained["throughput"] / baseline
    p99 = paced["reply_ms"]["p99"]
    print(f"\nend to end on this machine ({load_average(before)})")
    print(f"  {'GET /livez (hello world)':<34} {hello_first.rate:8.0f} req/s")
    print(f"  {'':<34} {hello_cpu.per(hello_first.requests)}")
    print(line(f"throughput, {SHOPPERS} shoppers", sustained))
    print(f"  {'':<34} {sustained_cpu.per(sustained['sent'])}")
    print(f"  {'GET /livez (again)':<34} {hello_again.rate:8.0f} req/s")
    print(line(f"conversation at {half:.0f} msg/s (half)", paced))
    print(f"  ratio end-to-end / hello = {ratio:.2f}  (regression floor {RATIO_FLOOR:.2f})")
    print(f"  p99 send -> reply at half rate = {p99} ms  (target <= {LATENCY_TARGET_MS:g} ms)")
    for report in (sustained, paced):
        assert (report["lost"], report["duplicated"], report["errors"]) == (0, 0, {})
    assert ratio >= RATIO_FLOOR
    assert p99 <= LATENCY_TARGET_MS


@pytest.mark.benchmark
async def test_two_processes_against_one(database_url: str) -> None:
    """The scale-out figure of docs/performance.md: throughput of 2 chatd processes on one database vs 1."""
    async with bench_sink() as (sink, _):
        async with chatd_with_sink(database_url, sink) as (url, _process):
            one = await throughput(url)
        async with AsyncExitStack() as stack:
            urls = [
                (await stack.enter_async_context(chatd_with_sink(database_url, sink)))[0]
                for _ in range(2)
            ]
            reports: list[dict[str, Any]] = []

            async def load(url: str) -> None:
                reports.append(await throughput(url, SHOPPERS // 2))

            async with trio.open_nursery() as nursery:
                for url in urls:
                    nursery.start_soon(load, url)
    two = sum(r["throughput"] for r in reports)
    print("\nscale-out on this machine (2 cores shared by everything)")
    print(line("1 process", one))
    for n, report in enumerate(reports):
        print(line(f"2 processes: process {n + 1}", report))
    print(f"  2 processes / 1 process = {two / one['throughput']:.2f}")
    for report in (one, *reports):
        assert (report["lost"], report["duplicated"]) == (0, 0)
