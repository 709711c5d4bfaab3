"""The embedded PostgreSQL: start, lock, stop, keep data, and recover from an orphaned server."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import trio

from chatd.db.bridge import TrioConnection
from chatd.db.embedded import Cluster, lock_state_dir
from chatd.db.embedded_supervisor import open_embedded_postgres
from chatd.errors import EmbeddedPostgresError
from tests.pg import FAST, EmbeddedServer


async def scalar(url: str, *statements: Any) -> Any:
    """Run the statements on a fresh connection; the first column of the last one's first row."""
    conn: TrioConnection[Any] = await TrioConnection.connect_trio(url, connect_timeout=5)
    try:
        for statement in statements:
            cursor = await conn.execute(statement)
        row = await cursor.fetchone()
        assert row is not None
        return row[0]
    finally:
        await conn.close()


def postmaster_pid(cluster: Cluster) -> int:
    return int((cluster.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_runs_locks_stops_and_keeps_data(state_dir: Path) -> None:
    cluster = Cluster(state_dir, extra_settings=FAST)
    with trio.fail_after(60):
        async with open_embedded_postgres(cluster) as url:
            assert await scalar(url, "SELECT 1") == 1
            await scalar(
                url, "CREATE TABLE kept (v text)", "INSERT INTO kept VALUES ('run 1')", "SELECT 1"
            )
            pid = postmaster_pid(cluster)
            assert process_exists(pid)
            with pytest.raises(EmbeddedPostgresError, match=str(state_dir)):
                lock_state_dir(state_dir)
    assert not (cluster.pgdata / "postmaster.pid").exists()
    assert not process_exists(pid)

    # The lock went with the server: the directory can be taken again.
    lock_state_dir(state_dir).close()

    with trio.fail_after(60):
        async with open_embedded_postgres(cluster) as url:
            assert await scalar(url, "SELECT v FROM kept") == "run 1"
            assert postmaster_pid(cluster) != pid
    assert not (cluster.pgdata / "postmaster.pid").exists()


async def test_stops_a_server_orphaned_by_a_crashed_chatd(state_dir: Path) -> None:
    cluster = Cluster(state_dir, extra_settings=FAST)
    orphan = EmbeddedServer(cluster)  # started like chatd would, but chatd is "gone"
    await trio.to_thread.run_sync(orphan.start)
    assert orphan.process is not None
    orphan_pid = orphan.process.pid
    assert postmaster_pid(cluster) == orphan_pid
    try:
        with trio.fail_after(60):
            async with open_embedded_postgres(cluster) as url:
                assert await scalar(url, "SELECT 1") == 1
                assert postmaster_pid(cluster) != orphan_pid
                # The orphan got a fast shutdown and exited (we reap it: it is our child).
                assert orphan.process.poll() is not None
    finally:
        await trio.to_thread.run_sync(orphan.stop)
    assert not (cluster.pgdata / "postmaster.pid").exists()


async def test_stale_pid_file_naming_an_unrelated_process_is_left_alone(state_dir: Path) -> None:
    # After a reboot or a container restart the pid in a stale postmaster.pid may belong to any
    # process: chatd must not signal it (nor wait for a pid file nobody will remove).
    cluster = Cluster(state_dir, extra_settings=FAST)
    with trio.fail_after(60):
        async with open_embedded_postgres(cluster):
            pass  # initdb
    bystander = await trio.lowlevel.open_process(["sleep", "60"])
    try:
        (cluster.pgdata / "postmaster.pid").write_text(f"{bystander.pid}\n{cluster.pgdata}\n")
        start = trio.current_time()
        with trio.fail_after(60):
            async with open_embedded_postgres(cluster) as url:
                assert await scalar(url, "SELECT 1") == 1
        assert trio.current_time() - start < 10
        assert bystander.poll() is None  # not signalled
    finally:
        bystander.kill()
        await bystander.wait()


async def test_with_no_restarts_allowed_a_dead_server_ends_the_block(state_dir: Path) -> None:
    cluster = Cluster(state_dir, extra_settings=FAST)

    async def kill_and_wait() -> None:
        async with open_embedded_postgres(cluster, restart_max=0):
            os.kill(postmaster_pid(cluster), signal.SIGKILL)
            with trio.fail_after(30):  # the supervisor cancels this wait, raising
                await trio.sleep_forever()

    with pytest.raises(ExceptionGroup) as caught:
        await kill_and_wait()
    assert caught.group_contains(
        EmbeddedPostgresError, match=r"0 restart\(s\) in a row failed", depth=1
    )
    lock_state_dir(state_dir).close()  # the directory is free again
