"""The embedded PostgreSQL is supervised: killed, it comes back; restarted by someone else, it is
adopted and still stopped with chatd; unable to start, it makes chatd exit for systemd to act."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import trio

from chatd.db.embedded import PG_BIN, Cluster
from tests.served import chat_with_demo_bot, processes_on, serving


async def wait_ready_status(client: httpx.AsyncClient, status: int, timeout: float) -> float:
    """Poll /readyz until it answers `status`; when it did."""
    with trio.fail_after(timeout):
        while (await client.get("/readyz")).status_code != status:
            await trio.sleep(0.02)
    return trio.current_time()


async def test_a_killed_postgres_is_restarted_and_readyz_tells_meanwhile(
    state_dir: Path, repo_root: Path
) -> None:
    async with (
        serving(state_dir, repo_root, CHATD_DATABASE__EMBEDDED_RESTART_MAX="10") as chatd,
        httpx.AsyncClient(base_url=chatd.url, timeout=10) as client,
    ):
        await wait_ready_status(client, 200, 30)
        killed = chatd.postmaster_pid()
        os.kill(killed, signal.SIGKILL)
        at_kill = trio.current_time()
        noticed = await chatd.wait_for_line('"signal": "SIGKILL"', timeout=5)
        ready = await wait_ready_status(client, 200, 10)
        print(
            f"killed postmaster: noticed after {noticed - at_kill:.2f}s,"
            f" /readyz 200 again after {ready - at_kill:.2f}s"
        )
        exited = next(line for _, line in chatd.lines if "embedded_postgres_exited" in line)
        assert f'"pid": {killed}' in exited
        assert "log_tail" in exited
        # One restart, or a few if the first came before the old server's processes had all gone.
        assert chatd.count("embedded_postgres_restarting") >= 1
        assert chatd.postmaster_pid() != killed
        assert (await chat_with_demo_bot(client, "hello again")).startswith("Hello!")

        # Killed again, and unable to start for a while: not ready meanwhile, then ready again.
        version = chatd.pgdata / "PG_VERSION"
        version.rename(chatd.pgdata / "PG_VERSION.away")  # read only at start: it runs on
        since = len(chatd.lines)
        os.kill(chatd.postmaster_pid(), signal.SIGKILL)
        await chatd.wait_for_line('"answered": false', since=since)  # a restart failed
        answer = await client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["checks"]["database"] == "down"
        (chatd.pgdata / "PG_VERSION.away").rename(version)
        await wait_ready_status(client, 200, 15)
        assert (await chat_with_demo_bot(client, "hello once more")).startswith("Hello!")

        chatd.process.send_signal(signal.SIGTERM)
        assert await chatd.wait_exit(30) == 0
    assert processes_on(chatd.pgdata) == []


async def test_pg_ctl_restart_is_adopted_and_stopped_with_chatd(
    state_dir: Path, repo_root: Path
) -> None:
    async with (
        serving(state_dir, repo_root) as chatd,
        httpx.AsyncClient(base_url=chatd.url, timeout=10) as client,
    ):
        await wait_ready_status(client, 200, 30)
        ours = chatd.postmaster_pid()
        # As root pg_ctl must run as the cluster's user, like PostgreSQL itself. Its server
        # inherits pg_ctl's output: /dev/null, not a pipe that would stay open while it runs.
        restarted = await trio.run_process(
            [str(PG_BIN / "pg_ctl"), "restart", "-D", str(chatd.pgdata), "-m", "fast", "-w"],
            cwd="/",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            **Cluster(state_dir).process_options(),
        )
        assert restarted.returncode == 0
        theirs = chatd.postmaster_pid()
        assert theirs != ours
        await wait_ready_status(client, 200, 15)
        assert (await chat_with_demo_bot(client, "hello after pg_ctl")).startswith("Hello!")

        chatd.process.send_signal(signal.SIGTERM)
        assert await chatd.wait_exit(30) == 0
    assert processes_on(chatd.pgdata) == []  # pg_ctl's postmaster did not outlive chatd
    assert not (chatd.pgdata / "postmaster.pid").exists()
    adopted = next(line for _, line in chatd.lines if "embedded_postgres_adopted" in line)
    assert f'"pid": {theirs}' in adopted
    assert chatd.count("embedded_postgres_restarting") == 0  # theirs was used, not raced


async def test_a_postgres_that_cannot_restart_makes_chatd_exit_1(
    state_dir: Path, repo_root: Path
) -> None:
    async with serving(state_dir, repo_root, CHATD_DATABASE__EMBEDDED_RESTART_MAX="2") as chatd:
        pid = chatd.postmaster_pid()
        # A data directory PostgreSQL no longer accepts; read only at start, so it runs on.
        (chatd.pgdata / "PG_VERSION").rename(chatd.pgdata / "PG_VERSION.away")
        os.kill(pid, signal.SIGKILL)
        assert await chatd.wait_exit(30) == 1
    assert chatd.count("embedded_postgres_restarting") == 2
    gave_up = next(line for _, line in chatd.lines if "embedded_postgres_gave_up" in line)
    assert "PG_VERSION" in gave_up  # the end of postgres.log says why
    assert "2 restart(s) in a row failed (database.embedded_restart_max = 2)" in chatd.log()
    assert processes_on(chatd.pgdata) == []
