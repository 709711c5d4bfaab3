"""Ctrl-C in a terminal: chatd stops at once when idle, and it alone stops its PostgreSQL."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import trio

from tests.served import chat_with_demo_bot, processes_on, serving


async def test_ctrl_c_after_chatting_stops_in_under_a_second(
    state_dir: Path, repo_root: Path
) -> None:
    async with (
        # Console logs, as in a terminal (the "stopping…" line is for a person, not for JSON).
        serving(state_dir, repo_root, CHATD_LOG__FORMAT="console") as chatd,
        # Left open, as a browser keeps its keep-alive connections: they must not delay the stop.
        httpx.AsyncClient(base_url=chatd.url, timeout=10) as client,
    ):
        # The demo bot is served on chatd's own port: its webhook call leaves a keep-alive
        # connection to ourselves behind, which used to hold the stop for the whole grace period.
        assert (await chat_with_demo_bot(client, "hello")).startswith("Hello!")
        postmaster = chatd.postmaster_pid()

        os.killpg(chatd.process.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        started = trio.current_time()
        assert await chatd.wait_exit(5) == 0
        took = trio.current_time() - started
        print(f"Ctrl-C after chatting: chatd exited after {took:.2f}s")
        assert took < 1.0, chatd.log()
    log = chatd.log()
    assert "stopping… (Ctrl-C again to force)" in log
    # PostgreSQL got no Ctrl-C of its own: chatd stopped it after closing its connections.
    assert "listen_connection_lost" not in log
    assert "database_waiting" not in log
    assert postmaster not in processes_on(chatd.pgdata)
    assert processes_on(chatd.pgdata) == []
    assert not (chatd.pgdata / "postmaster.pid").exists()
