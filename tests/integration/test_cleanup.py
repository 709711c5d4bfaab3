"""Cleanup on a real database: exactly the rows retention says, never an undelivered message, in
batches, by one chatd at a time; the periodic loop survives database trouble."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import trio

from chatd.cli.ops import cleanup_as_leader
from chatd.db.cleanup import CleanupProgress, Removed, run_cleanup
from chatd.db.leader import leadership
from chatd.db.pool import Pool, PoolConfig, open_pool
from chatd.ops.maintenance import maintenance_round, run_maintenance
from chatd.settings import MaintenanceSettings, Settings

CONFIG = MaintenanceSettings()  # 30 days for sessions, 7 for completed jobs, 30 for dead letters


@dataclass(frozen=True)
class Job:
    status: str  # pending, processing, completed, dead
    age_days: float = 0.0  # updated_at (and completed_at, for completed jobs) this long ago
    completed_at_null: bool = False
    message_status: str | None = None  # default: follows the job status
    completed_days: float | None = None  # completed_at, if not age_days


async def seed_session(
    pool: Pool,
    sid: str,
    *,
    created_days: float = 0.1,  # and last active: before the hours the analytics roll up next
    expires_hours: float | None = 1.0,  # negative: expired; None: no expiry at all
    jobs: tuple[Job, ...] = (),
    bot_messages: int = 0,
) -> None:
    """A session with one user message per job (and its job), plus bot messages without jobs."""
    message_status = {"pending": "pending", "processing": "pending", "completed": "delivered"}
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO chat_sessions (id, token_hash, created_at, updated_at, expires_at,"
            " last_seq) VALUES (%(id)s, '\\x00', now() - make_interval(secs => %(d)s * 86400),"
            " now() - make_interval(secs => %(d)s * 86400),"
            " now() + make_interval(secs => %(h)s * 3600), %(n)s)",
            {"id": sid, "d": created_days, "h": expires_hours, "n": len(jobs) + bot_messages},
        )
        for seq, job in enumerate(jobs, 1):
            status = job.message_status or message_status.get(job.status, "failed")
            await conn.execute(
                "INSERT INTO chat_messages (id, session_id, sender_type, content, status, seq)"
                " VALUES (%s, %s, 'user', 'hi', %s, %s)",
                (f"{sid}-m{seq}", sid, status, seq),
            )
            completed = job.completed_days if job.completed_days is not None else job.age_days
            await conn.execute(
                "INSERT INTO chat_webhook_queue (id, message_id, session_id, seq, webhook_url,"
                " payload, status, updated_at, completed_at) VALUES (%(id)s, %(m)s, %(s)s,"
                " %(seq)s, 'http://n8n.invalid', '{}', %(status)s,"
                " now() - make_interval(secs => %(age)s * 86400),"
                " CASE WHEN %(status)s = 'completed' AND NOT %(null)s"
                "      THEN now() - make_interval(secs => %(done)s * 86400) END)",
                {
                    "id": f"{sid}-j{seq}",
                    "m": f"{sid}-m{seq}",
                    "s": sid,
                    "seq": seq,
                    "status": job.status,
                    "age": job.age_days,
                    "null": job.completed_at_null,
                    "done": completed,
                },
            )
        for n in range(len(jobs) + 1, len(jobs) + bot_messages + 1):
            await conn.execute(
                "INSERT INTO chat_messages (id, session_id, sender_type, content, seq)"
                " VALUES (%s, %s, 'bot', 'hello', %s)",
                (f"{sid}-m{n}", sid, n),
            )


async def seed_every_case(pool: Pool) -> None:
    await seed_session(
        pool, "expired", created_days=1, expires_hours=-1, jobs=(Job("completed"),), bot_messages=1
    )
    await seed_session(
        pool, "expired-dead", created_days=2, expires_hours=-24, jobs=(Job("dead", 1),)
    )
    await seed_session(pool, "old", created_days=40, jobs=(Job("completed", 35),))
    await seed_session(pool, "old-no-expiry", created_days=31, expires_hours=None)
    # Undelivered: old and expired, or just expired, with a job still to deliver.
    await seed_session(
        pool,
        "kept-pending",
        created_days=40,
        expires_hours=-100,
        jobs=(Job("completed", 10), Job("pending")),
    )
    await seed_session(pool, "kept-processing", expires_hours=-1, jobs=(Job("processing"),))
    await seed_session(pool, "fresh", jobs=(Job("completed", 1),), bot_messages=1)
    await seed_session(
        pool,
        "jobs",
        created_days=5,
        expires_hours=24,
        jobs=(
            Job("completed", 8),  # 1: old completed: goes
            Job("completed", 8, completed_at_null=True),  # 2: no completed_at, old update: goes
            Job("completed", 1),  # 3: fresh completed: stays
            Job("completed", 8, completed_days=1),  # 4: completed recently, touched long ago
            Job("dead", 31),  # 5: old dead letter: goes, message stays failed
            Job("dead", 31, message_status="pending"),  # 6: goes, its message becomes failed
            Job("dead", 1),  # 7: fresh dead letter: stays
            Job("processing"),  # 8: stays
        ),
    )


EXPECTED = {
    "expired_sessions": Removed(sessions=2, messages=3, jobs=2),
    "old_sessions": Removed(sessions=2, messages=1, jobs=1),
    "completed_jobs": Removed(jobs=3),
    "dead_letters": Removed(jobs=2),
    "stale_uploads": Removed(),  # files: tests/integration/test_attachment_storage.py
}


async def ids(pool: Pool, table: str) -> set[str]:
    async with pool.connection() as conn:
        sql = {
            "sessions": "SELECT id FROM chat_sessions",
            "messages": "SELECT id FROM chat_messages",
            "jobs": "SELECT id FROM chat_webhook_queue",
        }[table]
        return {row["id"] for row in await (await conn.execute(sql)).fetchall()}


async def test_cleanup_deletes_exactly_what_retention_says(pool: Pool) -> None:
    await seed_every_case(pool)
    summary = await run_cleanup(pool, CONFIG)

    assert summary.categories() == EXPECTED
    assert summary.kept_undelivered == 2
    assert summary.total() == Removed(sessions=4, messages=4, jobs=8)
    assert not summary.dry_run
    assert await ids(pool, "sessions") == {"kept-pending", "kept-processing", "fresh", "jobs"}
    assert await ids(pool, "jobs") == {
        "kept-pending-j2",
        "kept-processing-j1",
        "fresh-j1",
        *(f"jobs-j{n}" for n in (3, 4, 7, 8)),
    }
    # Messages go only with their sessions: those of deleted jobs stay.
    assert await ids(pool, "messages") == {
        "kept-pending-m1",
        "kept-pending-m2",
        "kept-processing-m1",
        "fresh-m1",
        "fresh-m2",
        *(f"jobs-m{n}" for n in range(1, 9)),
    }
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, status FROM chat_messages WHERE id IN ('jobs-m5', 'jobs-m6')"
        )
        statuses = {row["id"]: row["status"] for row in await cur.fetchall()}
    assert statuses == {"jobs-m5": "failed", "jobs-m6": "failed"}

    again = await run_cleanup(pool, CONFIG)  # nothing left to do
    assert again.total() == Removed()
    assert again.kept_undelivered == 2


async def test_dry_run_deletes_nothing_and_counts_the_same(pool: Pool) -> None:
    await seed_every_case(pool)
    before = {table: await ids(pool, table) for table in ("sessions", "messages", "jobs")}
    dry = await run_cleanup(pool, CONFIG, dry_run=True)
    assert dry.dry_run
    assert dry.batches == 0
    assert {table: await ids(pool, table) for table in before} == before
    real = await run_cleanup(pool, CONFIG)
    assert dry.categories() == real.categories() == EXPECTED
    assert dry.kept_undelivered == real.kept_undelivered == 2
    assert dry.as_dict()["dry_run"] is True
    assert dry.as_dict()["total"] == {"sessions": 4, "messages": 4, "jobs": 8, "attachments": 0}
    assert "dry run: nothing was deleted" in dry.describe()
    assert any(line.startswith("kept (undelivered)") for line in real.lines())


async def test_cleanup_works_in_batches(pool: Pool) -> None:
    for n in range(7):
        await seed_session(pool, f"expired-{n}", expires_hours=-1, bot_messages=2)
    await seed_session(pool, "jobs", jobs=tuple(Job("completed", 8) for _ in range(7)))
    progress: list[CleanupProgress] = []

    summary = await run_cleanup(
        pool, MaintenanceSettings(batch_size=2), on_progress=progress.append
    )

    expired = [p for p in progress if p.category == "expired_sessions"]
    assert [(p.batches, p.removed.sessions) for p in expired] == [(1, 2), (2, 4), (3, 6), (4, 7)]
    assert expired[-1].removed == Removed(sessions=7, messages=14)
    completed = [p for p in progress if p.category == "completed_jobs"]
    assert [p.removed.jobs for p in completed] == [2, 4, 6, 7]
    assert summary.batches == 8
    assert summary.categories()["completed_jobs"] == Removed(jobs=7)
    assert await ids(pool, "sessions") == {"jobs"}


async def test_a_full_last_batch_is_followed_by_an_empty_one(pool: Pool) -> None:
    for n in range(4):
        await seed_session(pool, f"expired-{n}", expires_hours=-1)
    progress: list[CleanupProgress] = []
    summary = await run_cleanup(
        pool, MaintenanceSettings(batch_size=2), on_progress=progress.append
    )
    assert [p.removed.sessions for p in progress] == [2, 4]  # the empty third batch reports nothing
    assert summary.categories()["expired_sessions"].sessions == 4


async def test_a_session_active_since_the_last_rollup_is_kept_until_rolled_up(pool: Pool) -> None:
    await seed_session(pool, "recent", created_days=0, expires_hours=-1)  # active now
    await seed_session(pool, "earlier", expires_hours=-1)
    summary = await run_cleanup(pool, CONFIG)
    assert summary.categories()["expired_sessions"].sessions == 1
    assert await ids(pool, "sessions") == {"recent"}
    async with pool.connection() as conn:
        state = await (
            await conn.execute("SELECT rolled_until FROM chat_analytics_state")
        ).fetchone()
        assert state is not None
        # Rolled up to the last hour that is over; "recent" was active after it.
        await conn.execute(
            "UPDATE chat_sessions SET updated_at = %s - interval '1 second' WHERE id = 'recent'",
            [state["rolled_until"]],
        )
    again = await run_cleanup(pool, CONFIG)
    assert again.categories()["expired_sessions"].sessions == 1
    assert await ids(pool, "sessions") == set()


async def test_one_cleanup_at_a_time(settings: Settings, pool: Pool) -> None:
    await seed_session(pool, "expired", expires_hours=-1)
    async with open_pool(PoolConfig(settings.database.url)) as other:
        async with leadership(other, "cleanup") as held:
            assert held is not None  # another chatd is cleaning up
            assert await maintenance_round(pool, CONFIG) is None  # this one skips the round
            assert await cleanup_as_leader(pool, CONFIG, wait=0) is None  # the CLI gives up
            assert await ids(pool, "sessions") == {"expired"}

        async def release_soon() -> None:
            async with leadership(other, "cleanup") as again:
                assert again is not None
                await trio.sleep(0.3)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(release_soon)
            await trio.sleep(0.05)
            with trio.fail_after(10):  # the CLI waits for the other cleanup, then runs
                summary = await cleanup_as_leader(pool, CONFIG, wait=5)
    assert summary is not None
    assert summary.categories()["expired_sessions"].sessions == 1
    assert await ids(pool, "sessions") == set()


async def test_the_maintenance_loop_survives_database_errors(pool: Pool) -> None:
    config = MaintenanceSettings(interval_seconds=0.05)
    await seed_session(pool, "first", expires_hours=-1)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run_maintenance, pool, lambda: config, first_delay=0))
        with trio.fail_after(10):
            while await ids(pool, "sessions"):
                await trio.sleep(0.02)
        # A broken schema makes every round fail (the loop logs it and carries on) ...
        async with pool.connection() as conn:
            await conn.execute("ALTER TABLE chat_sessions RENAME TO chat_sessions_away")
        await trio.sleep(0.3)
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO chat_sessions_away (id, token_hash, expires_at, updated_at)"
                " VALUES ('second', '\\x00', now() - interval '1 hour', now() - interval '2 hours')"
            )
            await conn.execute("ALTER TABLE chat_sessions_away RENAME TO chat_sessions")
        # ... and once repaired, the next round cleans up again.
        with trio.fail_after(10):
            while await ids(pool, "sessions"):
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()


async def test_an_unreachable_database_skips_the_round() -> None:
    config = PoolConfig(
        "postgresql://chatd@127.0.0.1:1/none", connect_timeout=0.5, acquire_timeout=0.5
    )
    async with open_pool(config, fill=False) as unreachable:
        assert await maintenance_round(unreachable, CONFIG) is None


async def test_interval_zero_pauses_cleanup_until_a_reload_sets_one(pool: Pool) -> None:
    await seed_session(pool, "expired", expires_hours=-1)
    config = MaintenanceSettings(interval_seconds=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(run_maintenance, pool, lambda: config, first_delay=0))
        await trio.sleep(0.3)
        assert await ids(pool, "sessions") == {"expired"}  # paused: nothing deleted
        nursery.cancel_scope.cancel()


async def test_a_session_locked_by_a_send_in_flight_is_skipped_not_waited_for(
    settings: Settings, pool: Pool
) -> None:
    await seed_session(pool, "busy", expires_hours=-1)
    await seed_session(pool, "idle", expires_hours=-1)
    # As a send in flight does: the session row stays locked until its transaction commits.
    async with (
        open_pool(PoolConfig(settings.database.url)) as other,
        other.connection() as conn,
        conn.transaction(),
    ):
        await conn.execute("SELECT 1 FROM chat_sessions WHERE id = 'busy' FOR UPDATE")
        with trio.fail_after(5):
            summary = await run_cleanup(pool, CONFIG)
    assert summary.categories()["expired_sessions"].sessions == 1
    assert await ids(pool, "sessions") == {"busy"}  # the next round will take it
