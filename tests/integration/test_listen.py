"""The LISTEN connection against a real server: delivery, filtering, reconnecting."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import trio

from chatd.db.listen import Listener
from chatd.db.owner import OWNER_LOCK_NAMESPACE, Owner
from chatd.db.pool import Pool


@dataclass
class Recorder:
    """What the listener reported, as channels a test can wait on."""

    notes_send: trio.MemorySendChannel[tuple[str, str]]
    notes: trio.MemoryReceiveChannel[tuple[str, str]]
    connects_send: trio.MemorySendChannel[None]
    connects: trio.MemoryReceiveChannel[None]
    connect_count: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)

    def on_notify(self, channel: str, payload: str) -> None:
        self.seen.append((channel, payload))
        self.notes_send.send_nowait((channel, payload))

    def on_connect(self) -> None:
        self.connect_count += 1
        self.connects_send.send_nowait(None)


@pytest.fixture
def recorder() -> Recorder:
    notes_send, notes = trio.open_memory_channel[tuple[str, str]](100)
    connects_send, connects = trio.open_memory_channel[None](100)
    return Recorder(notes_send, notes, connects_send, connects)


@pytest.fixture
async def listener(nursery: trio.Nursery, database_url: str, recorder: Recorder) -> Listener:
    listener = Listener(
        database_url,
        ["chan_a", "chan_b"],
        recorder.on_notify,
        recorder.on_connect,
        backoff_cap=0.5,
    )
    with trio.fail_after(10):
        await nursery.start(listener.run)
    return listener


async def notify(pool: Pool, channel: str, payload: str) -> None:
    async with pool.connection() as conn:
        await conn.execute("SELECT pg_notify(%s, %s)", [channel, payload])


async def test_receives_its_channels_and_ignores_others(
    listener: Listener, recorder: Recorder, pool: Pool
) -> None:
    assert listener.connected
    assert recorder.connect_count == 1  # on_connect fired before run() reported started
    await notify(pool, "other", "not for us")
    await notify(pool, "chan_a", "hello")
    await notify(pool, "chan_b", '{"json": true}')
    with trio.fail_after(5):
        first = await recorder.notes.receive()
        second = await recorder.notes.receive()
    assert [first, second] == [("chan_a", "hello"), ("chan_b", '{"json": true}')]
    # NOTIFYs from one session arrive in order, so "other" (sent first) was never delivered.
    assert recorder.seen == [first, second]
    assert listener.reconnects == 0


KILL_LISTENER = (
    "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND query LIKE '%LISTEN \"chan_%'"  # the listener's last statement
)


async def test_reconnects_after_its_backend_is_killed(
    listener: Listener, recorder: Recorder, pool: Pool
) -> None:
    await recorder.connects.receive()  # the first connect
    async with pool.connection() as conn:
        cur = await conn.execute(KILL_LISTENER)
        assert [row["killed"] for row in await cur.fetchall()] == [True]
    with trio.fail_after(10):
        await recorder.connects.receive()  # on_connect fires again after re-LISTENing
    assert recorder.connect_count == 2
    assert listener.reconnects == 1
    assert listener.connected

    await notify(pool, "chan_b", "after the reconnect")
    with trio.fail_after(5):
        assert await recorder.notes.receive() == ("chan_b", "after the reconnect")

    # And once more: every reconnect counts, not only the first.
    async with pool.connection() as conn:
        cur = await conn.execute(KILL_LISTENER)
        assert [row["killed"] for row in await cur.fetchall()] == [True]
    with trio.fail_after(10):
        await recorder.connects.receive()
    assert listener.reconnects == 2
    await notify(pool, "chan_a", "again")
    with trio.fail_after(5):
        assert await recorder.notes.receive() == ("chan_a", "again")


async def test_holds_the_owner_lock_and_takes_it_again_after_a_reconnect(
    nursery: trio.Nursery, database_url: str, pool: Pool, recorder: Recorder
) -> None:
    owner = Owner()
    taken: list[bool] = []
    owner.on_held(lambda: taken.append(owner.held))
    lock = "SELECT pg_try_advisory_lock(%s, %s) AS locked"
    release = "SELECT pg_advisory_unlock(%s, %s)"
    key = [OWNER_LOCK_NAMESPACE, owner.token]
    async with pool.connection() as other:
        # Held elsewhere first (our previous connection's backend, not yet gone): not ours yet.
        assert (await (await other.execute(lock, key)).fetchone()) == {"locked": True}
        listener = Listener(
            database_url, ["chan_a"], recorder.on_notify, recorder.on_connect, owner=owner
        )
        with trio.fail_after(10):
            await nursery.start(listener.run)
        assert (owner.held, owner.current(), taken) == (False, None, [])
        await other.execute(release, key)
    with trio.fail_after(5):  # retried while the connection idles
        while not owner.held:
            await trio.sleep(0.05)
    assert (owner.current(), taken) == (owner.token, [True])
    async with pool.connection() as conn:
        cur = await conn.execute(lock, key)
        assert await cur.fetchone() == {"locked": False}  # ours, on the LISTEN connection
        # The LISTEN connection's backend: the one holding the lock.
        cur = await conn.execute(
            "SELECT pg_terminate_backend(pid) AS killed FROM pg_locks"
            " WHERE locktype = 'advisory' AND classid = %s AND objid = %s AND objsubid = 2",
            key,
        )
        assert [row["killed"] for row in await cur.fetchall()] == [True]
    with trio.fail_after(10):  # reconnected, and the lock is ours again
        while len(taken) < 2:
            await trio.sleep(0.05)
    assert owner.held
