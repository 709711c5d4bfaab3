"""The cluster-wide counters in PostgreSQL (chatd/db/limits.py): exact under concurrency, swept
when over, and live-connection rows that follow their owner's lock."""

from __future__ import annotations

from collections import Counter

import psycopg
import trio

from chatd.core.messages import NewMessage
from chatd.core.tokens import token_hash
from chatd.db.limits import LimitStore
from chatd.db.messages import MessageStore, QueueTarget
from chatd.db.owner import OWNER_LOCK_NAMESPACE
from chatd.db.pool import Pool
from chatd.errors import RateLimited
from chatd.ops.maintenance import sweep_counters


async def test_concurrent_hits_count_exactly_up_to_the_limit(pool: Pool) -> None:
    store = LimitStore(pool)
    waits: list[float | None] = []

    async def hit() -> None:
        waits.append(await store.hit("test", "1.2.3.4", 20, 3600.0))

    async with trio.open_nursery() as nursery:
        for _ in range(60):
            nursery.start_soon(hit)
    assert waits.count(None) == 20
    assert all(w is not None and 0 < w <= 7200 for w in waits if w is not None)
    assert await store.retry_after("test", "1.2.3.4", 20, 3600.0) is not None
    assert await store.retry_after("test", "5.6.7.8", 20, 3600.0) is None  # other keys
    assert await store.retry_after("other", "1.2.3.4", 20, 3600.0) is None  # other scopes
    # A recorded failure counts past the limit.
    await store.record("test", "1.2.3.4", 3600.0)
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT hits FROM chat_rate_limits")).fetchone()
    assert row == {"hits": 21}


async def test_counters_whose_windows_are_over_are_swept(pool: Pool) -> None:
    store = LimitStore(pool)
    for n in range(5):
        assert await store.hit("test", f"10.0.0.{n}", 3, 0.2) is None
    assert await store.hit("test", "10.0.0.9", 3, 3600.0) is None
    assert await sweep_counters(store, 2) == 0  # nothing is over yet
    await trio.sleep(0.5)  # two 0.2 s windows later
    assert await sweep_counters(store, 2) == 5  # in batches of 2
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT key FROM chat_rate_limits")).fetchall()
    assert rows == [{"key": "10.0.0.9"}]


async def test_live_connection_rows_follow_their_owners_lock(pool: Pool, database_url: str) -> None:
    store = LimitStore(pool)
    with psycopg.connect(database_url, autocommit=True) as alive:
        alive.execute("SELECT pg_advisory_lock(%s, 7)", [OWNER_LOCK_NAMESPACE])
        assert await store.admit_connection(7, "1.2.3.4", 3) == 1
        assert await store.admit_connection(8, "1.2.3.4", 3) == 2  # owner 8 holds no lock
        assert await store.admit_connection(7, "1.2.3.4", 3) == 3
        assert await store.admit_connection(7, "1.2.3.4", 3) is None  # full, across owners
        assert await store.admit_connection(7, "1.2.3.4", 3, released=1) == 3  # one ended
        assert await store.sweep_connections(8) == 0  # a sweeper never sweeps itself
        assert await store.sweep_connections(99) == 1  # owner 8's row: its process is gone
        assert await store.admit_connection(7, "1.2.3.4", 3) == 3
        await store.release_connections(7, {"1.2.3.4": 2})
        await store.register_connections(7, {"5.6.7.8": 2})  # what owner 7 really holds
        async with pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT address, owner_token, connections FROM chat_live_connections"
                )
            ).fetchall()
        assert rows == [{"address": "5.6.7.8", "owner_token": 7, "connections": 2}]
    # Owner 7's lock goes with its connection, as soon as the server has let that go.
    with trio.fail_after(5):
        while not await store.sweep_connections(99):
            await trio.sleep(0.05)
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM chat_live_connections")
        assert await cur.fetchone() == {"n": 0}


async def test_concurrent_sends_past_every_actor_store_exactly_the_session_limit(
    pool: Pool,
) -> None:
    """The per-session limit is the send statement's: sends racing on separate connections
    (as from several processes) are checked on the row as locked, one after the other."""
    target = QueueTarget("demo", 3, 3600.0, 3600.0, rate_limit_max=5, rate_limit_window_seconds=60)
    store = MessageStore(pool, target)
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO chat_sessions (id, token_hash, expires_at)"
            " VALUES ('s', %s, now() + interval '1 hour')",
            [token_hash("t")],
        )
    outcomes: list[str] = []
    waits: list[float | None] = []

    async def send(n: int) -> None:
        try:
            await store.send("s", token_hash("t"), NewMessage(f"m{n}", "text", None, f"c{n}"))
        except RateLimited as exc:
            waits.append(exc.retry_after)
            outcomes.append("limited")
        else:
            outcomes.append("stored")

    async with trio.open_nursery() as nursery:
        for n in range(20):
            nursery.start_soon(send, n)
    assert Counter(outcomes) == {"stored": 5, "limited": 15}
    assert all(w is not None and 0 < w <= 60 for w in waits), waits
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) AS n, (SELECT cardinality(recent_sends) FROM chat_sessions)"
                " AS logged FROM chat_messages"
            )
        ).fetchone()
    assert row == {"n": 5, "logged": 5}
    # A message stored earlier and sent again is answered while the session is limited.
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT client_message_id FROM chat_messages LIMIT 1")
        first = await cur.fetchone()
    assert first is not None
    n = first["client_message_id"].removeprefix("c")
    again = await store.send("s", token_hash("t"), NewMessage(f"m{n}", "text", None, f"c{n}"))
    assert not again.created
