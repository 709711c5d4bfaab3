"""The leader lock: one holder at a time across connections, released after the block or when
its connection dies."""

from __future__ import annotations

import trio

from chatd.db.leader import leadership
from chatd.db.pool import Pool, PoolConfig, open_pool
from chatd.settings import Settings


async def test_only_one_holder_at_a_time_and_released_after(settings: Settings) -> None:
    url = settings.database.url
    async with open_pool(PoolConfig(url)) as first, open_pool(PoolConfig(url)) as second:
        async with leadership(first, "cleanup") as held:
            assert held is not None
            async with leadership(second, "cleanup") as other:
                assert other is None  # another process holds it: skip this round
            async with leadership(second, "alerts") as other_job:
                assert other_job is not None  # a different lock is independent
        async with leadership(second, "cleanup") as now_free:
            assert now_free is not None


async def test_a_dead_holder_hands_the_lock_over(settings: Settings, pool: Pool) -> None:
    url = settings.database.url
    async with open_pool(PoolConfig(url)) as other, leadership(pool, "cleanup") as held:
        assert held is not None
        pid = held.pgconn.backend_pid
        async with other.connection() as conn:
            await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with trio.fail_after(5):
            while True:
                async with leadership(other, "cleanup") as taken:
                    if taken is not None:
                        break
                await trio.sleep(0.02)
