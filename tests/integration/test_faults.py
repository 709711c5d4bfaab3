"""Fault drills (RELIABILITY.md, "Faults to drill") against real processes: chatd as a subprocess
killed with SIGKILL or frozen with SIGSTOP, an own PostgreSQL stopped fast and immediately, n8n (the
local sink) refusing connections, flaky and slow. After each: every acknowledged message accounted
for, order kept per session, no reply shown twice.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from chatd.db.migrate import migrate
from chatd.db.pool import PoolConfig, open_pool
from chatd.errors import DatabaseUnavailable
from tests.benchmarks.server import chatd_process
from tests.chat import Session, new_session, send
from tests.conftest import RunningChatd, make_settings, start_chatd
from tests.pg import EmbeddedServer, running_cluster, with_dbname
from tests.sink import Ack, Drop, Hold, Received, Reply, Sink, Status

SECRET = "n8n-shared-secret-for-the-fault-drills-0123"

# Quick retries and polls, so a drill takes seconds; generous limits so nothing is refused.
FAST_QUEUE: dict[str, object] = {
    "dispatch": True,
    "retry_base_delay_seconds": 0.05,
    "retry_max_delay_seconds": 0.3,
    "poll_interval_seconds": 0.2,
}
GENEROUS_CHAT: dict[str, object] = {"rate_limit_max": 100000, "session_create_per_ip_max": 100000}


# -- helpers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Acked:
    """A message the API acknowledged (200 with its id and seq)."""

    message_id: str
    session_id: str
    seq: int
    content: str


@dataclass
class Ledger:
    acked: list[Acked] = field(default_factory=list)
    unavailable: int = 0  # 503 database_unavailable answers (not acknowledged; retried)
    unexpected: list[str] = field(default_factory=list)  # any other non-200 answer


def process_env(sink: Sink, **overrides: object) -> dict[str, str]:
    """Environment for a `chatd serve` subprocess delivering to the sink."""
    env = {
        "CHATD_QUEUE__DISPATCH": "true",
        "CHATD_N8N__WEBHOOK_URL": sink.webhook_url,
        "CHATD_N8N__WEBHOOK_SECRET": SECRET,
        "CHATD_QUEUE__RETRY_BASE_DELAY_SECONDS": "0.05",
        "CHATD_QUEUE__RETRY_MAX_DELAY_SECONDS": "0.3",
        "CHATD_QUEUE__POLL_INTERVAL_SECONDS": "0.2",
        "CHATD_CHAT__RATE_LIMIT_MAX": "100000",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def _fetch(url: str, sql: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=3, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()


def _execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql)


async def fetch(url: str, sql: str, params: Any = None) -> list[dict[str, Any]]:
    """A query on a fresh connection, in a thread (the drills restart PostgreSQL under it)."""
    return await trio.to_thread.run_sync(_fetch, url, sql, params)


async def messages_by_id(url: str) -> dict[str, dict[str, Any]]:
    rows = await fetch(
        url,
        "SELECT id, session_id, sender_type, content, status, seq, reply_to, metadata"
        " FROM chat_messages",
    )
    return {r["id"]: r for r in rows}


async def wait_all_replied(url: str, acked: list[Acked], timeout: float) -> None:
    """Until every acknowledged message is 'delivered' and has a bot reply."""
    wanted = {a.message_id for a in acked}
    query = (
        "SELECT u.id, u.status, count(b.id) AS replies FROM chat_messages u"
        " LEFT JOIN chat_messages b ON b.reply_to = u.id AND b.sender_type = 'bot'"
        " WHERE u.sender_type = 'user' GROUP BY u.id, u.status"
    )
    missing: set[str] = set(wanted)
    try:
        with trio.fail_after(timeout):
            while True:
                try:
                    rows = await fetch(url, query)
                except psycopg.OperationalError:
                    rows = None
                if rows is not None:
                    done = {r["id"] for r in rows if r["status"] == "delivered" and r["replies"]}
                    missing = wanted - done
                    if not missing:
                        return
                await trio.sleep(0.1)
    except trio.TooSlowError:
        jobs = await fetch(
            url,
            "SELECT message_id, status, attempts, last_status, last_error, locked_until"
            " FROM chat_webhook_queue WHERE message_id = ANY(%s) LIMIT 10",
            [list(missing)],
        )
        raise AssertionError(
            f"{len(missing)} of {len(wanted)} acknowledged messages not replied within"
            f" {timeout:g} s; some of their jobs: {jobs}"
        ) from None


async def job_status(url: str, message_id: str) -> str | None:
    try:
        rows = await fetch(
            url, "SELECT status FROM chat_webhook_queue WHERE message_id = %s", [message_id]
        )
    except psycopg.OperationalError:
        return None
    return rows[0]["status"] if rows else None


def first_arrivals(requests: list[Received]) -> dict[str, list[int]]:
    """Per session, the seqs in the order each first reached the sink."""
    order: dict[str, list[int]] = defaultdict(list)
    for request in requests:
        seq = int(request.json["seq"])
        if seq not in order[request.json["sessionId"]]:
            order[request.json["sessionId"]].append(seq)
    return order


async def account_for_everything(
    url: str, ledger: Ledger, requests: list[Received], *, label: str
) -> int:
    """The drills' common verdict; returns the duplicates: messages n8n got more than once."""
    acked = ledger.acked
    assert acked, "nothing was acknowledged: the drill drilled nothing"
    assert len({a.message_id for a in acked}) == len(acked)
    rows = await messages_by_id(url)
    users = {i: r for i, r in rows.items() if r["sender_type"] == "user"}
    bots = [r for r in rows.values() if r["sender_type"] == "bot"]

    # Every acknowledged message is stored as acknowledged, delivered, and answered once.
    replies = Counter(b["reply_to"] for b in bots)
    for a in acked:
        row = users.get(a.message_id)
        assert row is not None, f"acknowledged message {a} is lost"
        assert (row["session_id"], row["seq"], row["content"]) == (a.session_id, a.seq, a.content)
        assert row["status"] == "delivered", (a, row)
        assert replies[a.message_id] == 1, f"{a} has {replies[a.message_id]} bot replies"
    # No reply shown twice, even to a message whose ack never reached the sender.
    assert max(replies.values()) == 1, [k for k, n in replies.items() if n > 1]
    fallbacks = [b for b in bots if (b["metadata"] or {}).get("fallback")]
    assert not fallbacks, f"{len(fallbacks)} messages were dead-lettered"

    # Each bot reply answers a user message of its own session, after it, in FIFO order.
    bot_seqs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for bot in bots:
        target = users.get(bot["reply_to"])
        assert target is not None, f"bot reply {bot} answers no user message"
        assert target["session_id"] == bot["session_id"], bot
        assert bot["seq"] > target["seq"], (bot, target)
        bot_seqs[bot["session_id"]].append((bot["seq"], target["seq"]))
    for session_id, pairs in bot_seqs.items():
        answered = [user_seq for _bot_seq, user_seq in sorted(pairs)]
        assert answered == sorted(answered), f"replies out of order in {session_id}: {pairs}"

    # n8n got every acknowledged message, first arrivals in seq order, one delivery id each.
    by_message: dict[str, list[Received]] = defaultdict(list)
    for request in requests:
        by_message[request.json["messageId"]].append(request)
    for a in acked:
        assert by_message.get(a.message_id), f"{a} never reached n8n"
    for session_id, seqs in first_arrivals(requests).items():
        assert seqs == sorted(seqs), f"session {session_id} reached n8n out of order: {seqs}"
    for message_id, got in by_message.items():
        ids = {r.headers["webhook-id"] for r in got}
        assert len(ids) == 1, f"{message_id} was sent with several delivery ids: {ids}"
    duplicates = sum(1 for got in by_message.values() if len(got) > 1)
    extra = sum(len(got) - 1 for got in by_message.values())
    print(
        f"\n[{label}] acknowledged={len(acked)} stored_user={len(users)} bot={len(bots)}"
        f" requests={len(requests)} duplicated_messages={duplicates} extra_requests={extra}"
        f" unavailable_503={ledger.unavailable}"
    )
    return duplicates


async def send_acked(
    client: httpx.AsyncClient, session: Session, content: str, ledger: Ledger
) -> Acked:
    response = await send(client, session, content)
    assert response.status_code == 200, response.text
    body = response.json()
    acked = Acked(body["messageId"], session.id, int(body["seq"]), content)
    ledger.acked.append(acked)
    return acked


async def _pool_task(
    url: str, acquire_timeout: float, *, task_status: trio.TaskStatus[Any]
) -> None:
    async with open_pool(PoolConfig(url, max_size=20, acquire_timeout=acquire_timeout)) as pool:
        task_status.started(pool)
        await trio.sleep_forever()


async def in_process_chatd(
    nursery: trio.Nursery,
    url: str,
    sink: Sink,
    *,
    queue: dict[str, object],
    n8n: dict[str, object],
    acquire_timeout: float = 5.0,
) -> RunningChatd:
    """chatd in this process (so a test can see its dispatcher), delivering to the sink."""
    settings = make_settings(
        url,
        queue={**FAST_QUEUE, **queue},
        n8n={"webhook_url": sink.webhook_url, "webhook_secret": SECRET, **n8n},
        chat=GENEROUS_CHAT,
    )
    pool = await nursery.start(_pool_task, url, acquire_timeout)
    return await start_chatd(nursery, settings, pool)


# -- 1. kill -9 mid-POST -----------------------------------------------------------------------


async def test_kill_9_mid_post_loses_nothing(nursery: trio.Nursery, database_url: str) -> None:
    sink = await Sink.start(nursery)
    sink.behave(Hold())  # n8n never answers the first chatd
    ledger = Ledger()
    env = process_env(sink, CHATD_QUEUE__LEASE_SECONDS=2, CHATD_QUEUE__MAX_ATTEMPTS=10)
    async with chatd_process(database_url, **env) as (url, process):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            sessions = [await new_session(client) for _ in range(5)]
            for n in range(4):
                for i, session in enumerate(sessions):
                    await send_acked(client, session, f"s{i} m{n}", ledger)
        await sink.wait_for(5)  # each session's first message is held mid-POST
        process.kill()
        with trio.fail_after(10):
            await process.wait()
        assert process.returncode == -signal.SIGKILL
    held = len(sink.requests)
    sink.behave(lambda r: Reply(f"answer to {r.get('messageId')}"))
    sink.release()  # the held requests' connections are dead: these answers go nowhere
    async with chatd_process(database_url, **env) as (_url, second):
        await wait_all_replied(database_url, ledger.acked, timeout=30)
        second.kill()
    duplicates = await account_for_everything(database_url, ledger, sink.requests, label="kill -9")
    assert duplicates == held == 5  # exactly the messages in flight when chatd died
    rows = await messages_by_id(database_url)
    for bot in (r for r in rows.values() if r["sender_type"] == "bot"):
        assert bot["content"] == f"answer to {bot['reply_to']}"
    jobs = await fetch(database_url, "SELECT status, attempts FROM chat_webhook_queue")
    assert Counter((j["status"], j["attempts"]) for j in jobs) == {
        ("completed", 2): 5,  # the rescued ones: the killed attempt counted
        ("completed", 1): 15,
    }


# -- 2. PostgreSQL restart, fast and immediate, under load -------------------------------------


@pytest.fixture(scope="module")
def restartable_cluster() -> Iterator[EmbeddedServer]:
    # Durable commits (synchronous_commit on): an immediate shutdown must not lose an acked
    # commit here, which the shared test cluster's synchronous_commit=off would allow.
    with running_cluster(("fsync=off", "max_connections=300")) as server:
        yield server


@pytest.fixture
def own_cluster(restartable_cluster: EmbeddedServer) -> EmbeddedServer:
    """A PostgreSQL of this module's own, to stop and start; running when a test begins."""
    if restartable_cluster.process is None:  # a failed drill left it stopped
        restartable_cluster.start()
    return restartable_cluster


async def migrated_database(server: EmbeddedServer) -> str:
    name = f"faults_{uuid.uuid4().hex[:12]}"
    await trio.to_thread.run_sync(_execute, server.url, f"CREATE DATABASE {name}")
    url = with_dbname(server.url, name)
    async with open_pool(PoolConfig(url, min_size=1)) as migrator, migrator.connection() as conn:
        await migrate(conn)
    return url


async def _send_continuously(
    client: httpx.AsyncClient, session: Session, index: int, ledger: Ledger, stop: trio.Event
) -> None:
    n = 0
    while not stop.is_set():
        content = f"s{index} m{n}"
        client_id = str(uuid.uuid4())  # a retry after 503 or a lost answer is the same message
        while True:
            try:
                response = await send(client, session, content, clientMessageId=client_id)
            except httpx.TransportError:
                await trio.sleep(0.05)
                continue
            if response.status_code == 200:
                body = response.json()
                ledger.acked.append(Acked(body["messageId"], session.id, int(body["seq"]), content))
                break
            if response.status_code == 503 and "database_unavailable" in response.text:
                ledger.unavailable += 1  # not acknowledged: try the same message again
                await trio.sleep(0.05)
                continue
            ledger.unexpected.append(f"{response.status_code} {response.text[:200]}")
            break
        n += 1
        await trio.sleep(0.02)


async def _restart(server: EmbeddedServer, mode: signal.Signals) -> None:
    await trio.to_thread.run_sync(server.stop, mode)
    await trio.sleep(1)
    await trio.to_thread.run_sync(server.start)


async def test_postgres_restart_fast_and_immediate_under_load(
    nursery: trio.Nursery, own_cluster: EmbeddedServer
) -> None:
    url = await migrated_database(own_cluster)
    sink = await Sink.start(nursery)
    sink.behave(lambda r: Reply(f"answer to {r.get('messageId')}", delay=random.uniform(0, 0.02)))
    chatd = await in_process_chatd(
        nursery,
        url,
        sink,
        # A slow poll: after the restarts, a prompt delivery needs the LISTEN connection back.
        queue={"lease_seconds": 2, "max_attempts": 50, "poll_interval_seconds": 3},
        n8n={"timeout_seconds": 1},
    )
    ledger = Ledger()
    stop = trio.Event()
    async with chatd.client() as client:
        sessions = [await new_session(client) for _ in range(8)]
        with trio.fail_after(60):
            async with trio.open_nursery() as senders:
                for i, session in enumerate(sessions):
                    senders.start_soon(_send_continuously, client, session, i, ledger, stop)
                await trio.sleep(1.5)
                before_fast = len(ledger.acked)
                await _restart(own_cluster, signal.SIGINT)
                await trio.sleep(1.5)
                before_immediate = len(ledger.acked)
                await _restart(own_cluster, signal.SIGQUIT)
                await trio.sleep(1.5)
                stop.set()
        assert 0 < before_fast < before_immediate < len(ledger.acked)
        await wait_all_replied(url, ledger.acked, timeout=30)
        # The LISTEN connection is back on its own (and the dispatchers, since all got replies).
        with trio.fail_after(15):
            while not await fetch(
                url,
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND query LIKE '%LISTEN%chatd_jobs%'",
            ):
                await trio.sleep(0.1)
        # ... and NOTIFY reaches it: a new message is delivered well within one poll interval.
        dispatcher = chatd.services.state.dispatcher
        assert dispatcher is not None
        await trio.sleep(0.5)  # no claim in flight from the last poll or wake-up
        sent_at = trio.current_time()
        await send_acked(client, sessions[0], "after the restarts", ledger)
        await wait_all_replied(url, ledger.acked, timeout=10)
        assert trio.current_time() - sent_at < 2.5
    assert not ledger.unexpected, ledger.unexpected[:5]
    await account_for_everything(url, ledger, sink.requests, label="pg restart")
    stats = dispatcher.statistics()
    print(
        f"[pg restart] dispatcher: delivered={stats.delivered} retried={stats.retried}"
        f" lost_leases={stats.lost_leases}"
    )
    chatd.stop.set()


class ChatdCrashed(AssertionError):
    """chatd's own task tree ended with an error while the drill ran."""


@pytest.mark.parametrize(
    "answer", [Status(500, delay=1.0), Ack(202, delay=1.0)], ids=["retry-500", "complete-202"]
)
async def test_postgres_away_while_an_outcome_is_recorded(
    own_cluster: EmbeddedServer, answer: Status
) -> None:
    url = await migrated_database(own_cluster)
    try:
        await _record_an_outcome_while_postgres_is_away(own_cluster, url, answer)
    except BaseExceptionGroup as group:
        crash, _rest = group.split(DatabaseUnavailable)
        if crash is None:
            raise
        raise ChatdCrashed("chatd died of a database outage it should ride out") from group


async def _record_an_outcome_while_postgres_is_away(
    own_cluster: EmbeddedServer, url: str, answer: Status
) -> None:
    async with trio.open_nursery() as nursery:  # chatd crashing fails this test, not teardown
        sink = await Sink.start(nursery)
        sink.queue(answer)  # n8n answers after a second: PostgreSQL is stopped by then
        sink.behave(Reply("second time lucky"))
        chatd = await in_process_chatd(
            nursery,
            url,
            sink,
            queue={"lease_seconds": 2, "max_attempts": 50},
            n8n={"timeout_seconds": 5},
            acquire_timeout=1.0,  # the pool gives up on a reconnect after 1 s, not 5
        )
        ledger = Ledger()
        async with chatd.client() as client:
            session = await new_session(client)
            acked = await send_acked(client, session, "hello?", ledger)
            await sink.wait_for(1)
            await trio.to_thread.run_sync(own_cluster.stop, signal.SIGINT)
            await trio.sleep(2.5)  # the answer came, and recording it gave up on the pool
            await trio.to_thread.run_sync(own_cluster.start)
            # The outcome is recorded late, or the lease expires and the job is rescued.
            with trio.fail_after(15):
                while await job_status(url, acked.message_id) != "completed":
                    await trio.sleep(0.1)
            assert (await client.get("/livez")).status_code == 200  # still serving
            await send_acked(client, session, "still there?", ledger)
            await wait_all_replied(url, ledger.acked[1:], timeout=10)
        chatd.stop.set()
        nursery.cancel_scope.cancel()  # the sink and the pool live until cancelled


# -- 3. many sessions, a flaky and slow n8n -----------------------------------------------------


async def test_fifo_and_once_with_random_delays_and_failures(
    nursery: trio.Nursery, database_url: str
) -> None:
    rng = random.Random(20240611)
    outcomes: Counter[str] = Counter()

    def flaky(request: Received) -> Any:
        delay = rng.uniform(0, 0.05)
        roll = rng.random()
        if roll < 0.05:
            outcomes["500"] += 1
            return Status(500, delay=delay)
        if roll < 0.10:
            outcomes["503"] += 1
            return Status(503, headers={"Retry-After": "0"}, delay=delay)
        if roll < 0.15:
            outcomes["drop"] += 1
            return Drop(delay=delay)
        outcomes["reply"] += 1
        return Reply(f"answer to {request.get('messageId')}", delay=delay)

    sink = await Sink.start(nursery)
    sink.behave(flaky)
    ledger = Ledger()

    async def converse(client: httpx.AsyncClient, index: int) -> None:
        session = await new_session(client)
        for n in range(20):
            await send_acked(client, session, f"s{index} m{n}", ledger)

    # chatd in its own process: sharing this one's event loop with the sink and the senders,
    # it would be CPU-bound on one core and the drill would take four times as long.
    env = process_env(
        sink,
        CHATD_QUEUE__CONCURRENCY=8,
        CHATD_QUEUE__MAX_ATTEMPTS=50,
        CHATD_QUEUE__LEASE_SECONDS=10,
        CHATD_N8N__TIMEOUT_SECONDS=2,
    )
    async with chatd_process(database_url, **env) as (url, process):
        started = time.perf_counter()
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
            with trio.fail_after(60):  # ~15 s on two idle cores
                async with trio.open_nursery() as senders:
                    for i in range(50):
                        senders.start_soon(converse, client, i)
        assert len(ledger.acked) == 1000
        sent_in = time.perf_counter() - started
        await wait_all_replied(database_url, ledger.acked, timeout=90)
        elapsed = time.perf_counter() - started
        process.kill()
    await account_for_everything(database_url, ledger, sink.requests, label="flaky n8n")
    rows = await messages_by_id(database_url)
    for bot in (r for r in rows.values() if r["sender_type"] == "bot"):
        assert bot["content"] == f"answer to {bot['reply_to']}"
    assert min(outcomes["500"], outcomes["503"], outcomes["drop"]) > 0  # each fault was drilled
    print(f"[flaky n8n] {dict(outcomes)}; sent in {sent_in:.1f} s, all replied in {elapsed:.1f} s")


# -- 4. a worker frozen past its lease, then resumed -------------------------------------------


@dataclass
class LoggingChatd:
    """A `chatd serve` subprocess whose JSON log lines are kept, to wait for an event in them."""

    url: str = ""
    process: trio.Process | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    _pending: bytes = b""

    async def wait_event(self, event: str, **fields: object) -> dict[str, Any]:
        while True:
            for entry in self.events:
                if entry.get("event") == event and fields.items() <= entry.items():
                    return entry
            await trio.sleep(0.05)

    def feed(self, chunk: bytes) -> None:
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))


@asynccontextmanager
async def logging_chatd(database_url: str, **env: str) -> AsyncIterator[LoggingChatd]:
    """chatd_process with its info-level JSON log kept; killed on the way out."""
    chatd = LoggingChatd()
    async with chatd_process(
        database_url,
        on_output=chatd.feed,
        graceful=False,
        CHATD_LOG__LEVEL="info",
        CHATD_LOG__FORMAT="json",
        **env,
    ) as (url, proc):
        chatd.url, chatd.process = url, proc
        yield chatd


async def test_a_frozen_worker_past_its_lease_changes_nothing_when_resumed(
    nursery: trio.Nursery, database_url: str
) -> None:
    sink = await Sink.start(nursery)
    sink.queue(Hold(then=Reply("late")))  # the first request: held until the worker is resumed
    sink.behave(Reply("rescued"))
    ledger = Ledger()
    env = process_env(
        sink,
        CHATD_QUEUE__LEASE_SECONDS=1,
        CHATD_N8N__TIMEOUT_SECONDS=10,
        CHATD_QUEUE__MAX_ATTEMPTS=10,
    )
    async with logging_chatd(database_url, **env) as frozen:
        async with httpx.AsyncClient(base_url=frozen.url, timeout=10) as client:
            session = await new_session(client)
            acked = await send_acked(client, session, "hello?", ledger)
        await sink.wait_for(1)
        frozen.process.send_signal(signal.SIGSTOP)
        stopped_at = trio.current_time()
        try:
            # The rescuer starts while the worker is frozen; it claims the job once the 1 s
            # lease has run out, and n8n answers it at once.
            async with chatd_process(database_url, **env) as (_url, rescuer):
                first, second = await sink.wait_for(2, timeout=20)
                assert first.headers["webhook-id"] == second.headers["webhook-id"]
                await wait_all_replied(database_url, ledger.acked, timeout=10)
                await trio.sleep_until(stopped_at + 2.5)  # frozen ~2.5 s in all
                rescuer.kill()
        finally:
            frozen.process.send_signal(signal.SIGCONT)
        sink.release()  # the resumed worker now gets its late answer...
        with trio.fail_after(10):  # ... and its fenced settle changes nothing
            late = await frozen.wait_event("dispatch_delivered", lease_kept=False)
        assert late["delivery_id"] == first.headers["webhook-id"]
    rows = await messages_by_id(database_url)
    assert sorted((r["sender_type"], r["content"]) for r in rows.values()) == [
        ("bot", "rescued"),
        ("user", "hello?"),
    ]
    (job,) = await fetch(
        database_url,
        "SELECT status, attempts, last_status FROM chat_webhook_queue WHERE message_id = %s",
        [acked.message_id],
    )
    assert (job["status"], job["attempts"], job["last_status"]) == ("completed", 2, 200)
    assert len(sink.requests) == 2
    await account_for_everything(database_url, ledger, sink.requests, label="SIGSTOP")


# -- 5. n8n refusing connections for a while -----------------------------------------------------


async def test_n8n_down_for_a_while_then_everything_delivered_once(
    nursery: trio.Nursery, database_url: str
) -> None:
    sink = await Sink.start(nursery)
    sink.behave(lambda r: Reply(f"answer to {r.get('messageId')}"))
    chatd = await in_process_chatd(
        nursery,
        database_url,
        sink,
        queue={"max_attempts": 100, "lease_seconds": 5},
        n8n={"timeout_seconds": 1},
    )
    ledger = Ledger()
    async with chatd.client() as client:
        sessions = [await new_session(client) for _ in range(5)]
        for i, session in enumerate(sessions):
            await send_acked(client, session, f"s{i} before", ledger)
        await wait_all_replied(database_url, ledger.acked, timeout=10)
        sink.refuse_connections()
        down_at = trio.current_time()
        with trio.fail_after(10):
            for n in range(6):  # spread over the outage
                for i, session in enumerate(sessions):
                    await send_acked(client, session, f"s{i} m{n}", ledger)
                await trio.sleep(0.5)
        await trio.sleep(max(0.0, 3 - (trio.current_time() - down_at)))
        requests_while_down = len(sink.requests)
        sink.accept_connections()
    await wait_all_replied(database_url, ledger.acked, timeout=15)
    assert requests_while_down == 5  # nothing reached n8n while it was down
    jobs = await fetch(database_url, "SELECT attempts, last_error FROM chat_webhook_queue")
    assert max(j["attempts"] for j in jobs) >= 3  # the outage was felt, and retried through
    await account_for_everything(database_url, ledger, sink.requests, label="n8n down")
    chatd.stop.set()
