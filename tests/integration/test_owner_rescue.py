"""A killed chatd's jobs come back within seconds, not after their lease (chatd/db/owner.py):
real `chatd serve` processes, a sink holding n8n's answers, kill -9 with messages in flight."""

from __future__ import annotations

import signal
from collections import Counter

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.benchmarks.server import chatd_process
from tests.chat import new_session
from tests.integration.test_faults import (
    Ledger,
    account_for_everything,
    fetch,
    process_env,
    send_acked,
    wait_all_replied,
)
from tests.sink import Hold, Reply, Sink

RECOVERY_SECONDS = 5.0


async def counter(url: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{name}_total":
                return sample.value
    raise AssertionError(f"{name} is not among the metrics")


async def test_kill_9_with_jobs_in_flight_recovers_within_seconds_not_a_lease(
    nursery: trio.Nursery, database_url: str
) -> None:
    sink = await Sink.start(nursery)
    sink.behave(Hold())  # n8n never answers the first chatd
    ledger = Ledger()
    # The default lease (60 s) and poll (2 s): only the owner lock can make recovery quick.
    env = process_env(sink, CHATD_QUEUE__LEASE_SECONDS="60", CHATD_QUEUE__POLL_INTERVAL_SECONDS="2")
    async with chatd_process(database_url, graceful=False, **env) as (url, first):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            sessions = [await new_session(client) for _ in range(5)]
            for n in range(3):
                for i, session in enumerate(sessions):
                    await send_acked(client, session, f"s{i} m{n}", ledger)
        await sink.wait_for(5)  # each session's first message is held mid-POST
        claimed = await fetch(
            database_url,
            "SELECT owner_token FROM chat_webhook_queue WHERE status = 'processing'",
        )
        assert len(claimed) == 5
        assert all(row["owner_token"] for row in claimed), claimed  # claimed under the lock
        first.kill()
        with trio.fail_after(10):
            await first.wait()
        assert first.returncode == -signal.SIGKILL
    held = len(sink.requests)
    sink.behave(lambda r: Reply(f"answer to {r.get('messageId')}"))
    sink.release()  # the held requests' connections are dead: these answers go nowhere
    async with chatd_process(database_url, **env) as (url, _second):
        restarted = trio.current_time()
        await wait_all_replied(database_url, ledger.acked, timeout=RECOVERY_SECONDS)
        recovery = trio.current_time() - restarted
        print(f"\n[owner rescue] all {len(ledger.acked)} replied {recovery:.2f} s after restart")
        assert await counter(url, "chatd_owner_rescues") == 5
        assert await counter(url, "chatd_lease_rescues") == 0
    duplicates = await account_for_everything(
        database_url, ledger, sink.requests, label="kill -9, owner rescue"
    )
    assert duplicates == held == 5  # exactly the messages in flight when chatd died
    jobs = await fetch(database_url, "SELECT status, attempts FROM chat_webhook_queue")
    assert Counter((j["status"], j["attempts"]) for j in jobs) == {
        ("completed", 2): 5,  # the rescued ones: the killed attempt counted
        ("completed", 1): 10,
    }
