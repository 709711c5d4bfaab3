"""The limits that protect the shop hold across processes: two real `chatd serve` on one database,
one client address (127.0.0.1) and one shopper going back and forth between them."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import trio

from tests.benchmarks.server import chatd_process
from tests.chat import Session, new_session, send
from tests.integration.test_connection_limits import hold_sse

QUIET = {"CHATD_QUEUE__DISPATCH": "false"}


@asynccontextmanager
async def two_chatds(database_url: str, **env: str) -> AsyncIterator[tuple[str, str]]:
    async with (
        chatd_process(database_url, **QUIET, **env) as (first, _),
        chatd_process(database_url, **QUIET, **env) as (second, _),
    ):
        yield first, second


async def test_a_shopper_going_back_and_forth_gets_one_message_limit(database_url: str) -> None:
    async with (
        two_chatds(database_url, CHATD_CHAT__RATE_LIMIT_MAX="5") as (a, b),
        httpx.AsyncClient(base_url=a, timeout=10) as to_a,
        httpx.AsyncClient(base_url=b, timeout=10) as to_b,
    ):
        session = await new_session(to_a)
        answers = [
            await send(client, session, f"m{n}", clientMessageId=f"c{n}")
            for n, client in zip(range(8), [to_a, to_b] * 4, strict=True)
        ]
        assert [r.status_code for r in answers] == [200] * 5 + [429] * 3
        limited = answers[-1]
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 0 < float(limited.headers["Retry-After"]) <= 60
        # A retry of a stored message is answered, not limited, on either process.
        again = await send(to_b, session, "m0", clientMessageId="c0")
        assert again.status_code == 200
        assert again.json()["messageId"] == answers[0].json()["messageId"]
        # Sends racing on both processes at once: still no sixth message.
        other = await new_session(to_b)
        statuses: list[int] = []

        async def one(client: httpx.AsyncClient, n: int) -> None:
            statuses.append((await send(client, other, f"r{n}")).status_code)

        async with trio.open_nursery() as nursery:
            for n in range(12):
                nursery.start_soon(one, (to_a, to_b)[n % 2], n)
        assert Counter(statuses) == {200: 5, 429: 7}
        stored = (await to_a.get(f"/api/chat/messages/{other.id}", headers=other.auth)).json()
        assert stored["pagination"]["total"] == 5


async def test_an_address_gets_one_new_session_limit(database_url: str) -> None:
    env = {"CHATD_CHAT__SESSION_CREATE_PER_IP_MAX": "4"}
    async with (
        two_chatds(database_url, **env) as (a, b),
        httpx.AsyncClient(timeout=10) as client,
    ):
        statuses = [
            (await client.post(f"{url}/api/chat/session", json={})).status_code
            for url in [a, b] * 4
        ]
        assert statuses == [200] * 4 + [429] * 4


async def test_wrong_operator_tokens_are_counted_across_processes(database_url: str) -> None:
    env = {"CHATD_ADMIN__TOKEN": "the-right-token", "CHATD_SERVER__OPERATOR_AUTH_FAILURES_MAX": "3"}
    async with (
        two_chatds(database_url, **env) as (a, b),
        httpx.AsyncClient(timeout=10) as client,
    ):

        async def overview(url: str, token: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"}
            return await client.get(f"{url}/api/admin/overview", headers=headers)

        wrong = [(await overview(url, f"guess{n}")).status_code for n, url in enumerate([a, b, a])]
        assert wrong == [401, 401, 401]
        for url in (a, b):  # a right token included: guessing has no oracle
            refused = await overview(url, "the-right-token")
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "too_many_auth_failures"


async def test_an_address_gets_one_connection_limit(database_url: str) -> None:
    async with two_chatds(database_url, CHATD_WEBSOCKET__MAX_CONNECTIONS_PER_IP="4") as (a, b):
        async with httpx.AsyncClient(base_url=a, timeout=10) as client:
            session = await new_session(client)
        outcomes: Counter[int] = Counter()
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            for n in range(12):  # at once, on both processes
                nursery.start_soon(hold_sse, (a, b)[n % 2], session, outcomes, done)
            await wait_for(lambda: sum(outcomes.values()) == 12)
            assert outcomes == {200: 4, 429: 8}
            done.set()
        # Ended streams free their places, on whichever process they were.
        await wait_for_admission(b, session)


async def test_a_killed_process_frees_its_connections_within_seconds(database_url: str) -> None:
    env = {**QUIET, "CHATD_WEBSOCKET__MAX_CONNECTIONS_PER_IP": "3"}
    async with chatd_process(database_url, **env) as (survivor, _):
        async with httpx.AsyncClient(base_url=survivor, timeout=10) as client:
            session = await new_session(client)
        outcomes: Counter[int] = Counter()
        async with chatd_process(database_url, graceful=False, **env) as (doomed, process):
            done = trio.Event()
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(hold_sse, doomed, session, outcomes, done)
                await wait_for(lambda: outcomes[200] == 3)
                refused: Counter[int] = Counter()
                await hold_sse(survivor, session, refused, trio.Event())
                assert refused == {429: 1}  # the address is full, on the other process
                process.kill()
                with trio.fail_after(10):
                    await process.wait()
                killed_at = trio.current_time()
                done.set()
        await wait_for_admission(survivor, session, seconds=5)
        print(f"\n[connections] freed {trio.current_time() - killed_at:.2f} s after kill -9")


async def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    with trio.fail_after(seconds):
        while not condition():
            await trio.sleep(0.01)


async def wait_for_admission(url: str, session: Session, seconds: float = 10) -> None:
    """Until an event stream from this address is let in at `url` (then it is closed)."""
    with trio.fail_after(seconds):
        while True:
            outcome: Counter[int] = Counter()
            done = trio.Event()
            done.set()
            await hold_sse(url, session, outcome, done)
            if outcome[200]:
                return
            await trio.sleep(0.1)
