"""The three load shapes of `chatd bench`, each bounded in time and stopping by itself.

- conversation (the guide's Artillery scenario): shoppers arrive at each phase's rate; each
  opens a session, joins over WebSocket, sends N messages with think time, awaiting each reply.
- throughput: C shoppers send as fast as replies come back (a new session every N messages, so
  per-session rate limits are not what is measured).
- idle: N sessions joined and heartbeating; then one broadcast (POST /api/admin/broadcast, to
  this run's sessions only) and the time until each session has it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import trio

from chatd.bench.http import HttpClients
from chatd.bench.shopper import Shopper, Target, one_shopper
from chatd.bench.stats import Tally, summary_ms

FAILED_SHOPPER_PAUSE = 0.5  # before a throughput shopper tries a new session
BROADCAST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Phase:
    rate: float  # shoppers arriving per second
    seconds: float


def parse_phases(text: str) -> list[Phase]:
    """ "10:30,50:30,100:30" -> three phases of (rate per second, seconds)."""
    phases = []
    for part in text.split(","):
        rate, sep, seconds = part.strip().partition(":")
        try:
            phase = Phase(float(rate), float(seconds))
        except ValueError:
            phase = None
        if not sep or phase is None or phase.rate <= 0 or phase.seconds <= 0:
            raise ValueError(f"phase {part.strip()!r}: expected RATE:SECONDS, both > 0")
        phases.append(phase)
    return phases


async def conversation(
    target: Target,
    http: HttpClients,
    tally: Tally,
    phases: Sequence[Phase],
    *,
    messages: int,
    think: float,
) -> None:
    async def one() -> None:
        shopper = Shopper(target, http, tally)
        with one_shopper(tally):
            async with shopper.joined() as joined:
                for n in range(messages):
                    if not await shopper.converse(joined, n):
                        return
                    if n < messages - 1:
                        await trio.sleep(think)

    async with trio.open_nursery() as shoppers:
        for phase in phases:
            arrival = trio.current_time()
            end = arrival + phase.seconds
            while arrival < end:
                shoppers.start_soon(one)
                arrival += 1 / phase.rate
                await trio.sleep_until(arrival)


async def throughput(
    target: Target,
    http: HttpClients,
    tally: Tally,
    *,
    concurrency: int,
    seconds: float,
    messages_per_session: int,
) -> None:
    deadline = trio.current_time() + seconds

    async def one() -> None:
        shopper = Shopper(target, http, tally)
        while trio.current_time() < deadline:
            with one_shopper(tally) as failed:
                async with shopper.joined() as joined:
                    for n in range(messages_per_session):
                        if trio.current_time() >= deadline or not await shopper.converse(joined, n):
                            return
            if failed:
                await trio.sleep(FAILED_SHOPPER_PAUSE)

    async with trio.open_nursery() as shoppers:
        for _ in range(concurrency):
            shoppers.start_soon(one)


async def idle(
    target: Target,
    http: HttpClients,
    tally: Tally,
    *,
    sessions: int,
    seconds: float,
    admin_token: str | None,
    connecting: int,
) -> dict[str, Any]:
    """Hold `sessions` joined for `seconds`, then broadcast; what it measured."""
    handshakes = trio.Semaphore(connecting)  # the server's accept backlog is finite
    all_joined, broadcast_sent, finished = trio.Event(), trio.Event(), trio.Event()
    all_received = trio.Event()
    joined_count = failed_count = 0
    received: list[float] = []
    sent_at = 0.0

    def settled() -> None:  # joined or failed: once all have, the hold begins
        if joined_count + failed_count >= sessions:
            all_joined.set()

    async def one() -> None:
        nonlocal joined_count, failed_count
        with one_shopper(tally) as failed:
            async with Shopper(target, http, tally, handshakes).joined() as joined:
                joined_count += 1
                settled()
                await broadcast_sent.wait()
                with trio.move_on_after(BROADCAST_TIMEOUT):
                    while (await joined.replies.receive())["senderType"] != "system":
                        pass
                    received.append(time.perf_counter() - sent_at)
                    if len(received) == joined_count:
                        all_received.set()
                await finished.wait()
        if failed and not all_joined.is_set():
            failed_count += 1
            settled()

    result: dict[str, Any] = {}
    async with trio.open_nursery() as shoppers:
        started = trio.current_time()
        for _ in range(sessions):
            shoppers.start_soon(one)
        with trio.move_on_after(max(seconds, 1.0) + sessions / 50):  # joining takes a while
            await all_joined.wait()
        result["connected"] = joined_count
        result["connect_seconds"] = round(trio.current_time() - started, 2)
        await trio.sleep(seconds)  # idle: only heartbeats
        if admin_token:
            sent_at = time.perf_counter()
            response = await http.post(
                "/api/admin/broadcast",
                {"content": "bench broadcast", "metadata": {"bench": target.run_id}},
                {"Authorization": f"Bearer {admin_token}"},
            )
            if response.status != 200:
                tally.errors[f"broadcast_http_{response.status}"] += 1
            else:
                broadcast_sent.set()
                with trio.move_on_after(BROADCAST_TIMEOUT):
                    await all_received.wait()
                result["broadcast_to"] = response.json()["sessions"]
                result["broadcast_received"] = len(received)
                result["broadcast_ms"] = summary_ms(received)
        else:
            result["broadcast"] = "skipped: give --admin-token to time a broadcast"
        broadcast_sent.set()
        finished.set()
    return result
