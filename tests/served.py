"""`chatd serve` with its embedded PostgreSQL as a subprocess, started as a terminal would start it
(its own process group, so a test can send Ctrl-C to the whole group), its log read line by line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trio

from chatd.db.embedded import Cluster, running_postmaster
from tests.chat import new_session, send
from tests.e2e.test_serve import LISTENING, serve_env


@dataclass
class Served:
    process: trio.Process
    state_dir: Path
    url: str = ""
    lines: list[tuple[float, str]] = field(default_factory=list)  # (trio time read, line)

    @property
    def pgdata(self) -> Path:
        return self.state_dir / "pg"

    def postmaster_pid(self) -> int:
        return int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])

    def log(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def count(self, event: str) -> int:
        return sum(f'"event": "{event}"' in line for _, line in self.lines)

    async def wait_for_line(self, text: str, timeout: float = 15, *, since: int = 0) -> float:
        """Until a log line containing `text` is read (the `since`-th line or later); when."""
        with trio.fail_after(timeout):
            while True:
                for at, line in self.lines[since:]:
                    if text in line:
                        return at
                await trio.sleep(0.02)

    async def wait_exit(self, timeout: float) -> int:
        with trio.fail_after(timeout):
            return await self.process.wait()


async def _read_lines(served: Served, listening: trio.Event) -> None:
    stream = served.process.stderr
    assert stream is not None
    buffer = b""
    async for chunk in stream:
        *lines, buffer = (buffer + chunk).split(b"\n")
        for line in lines:
            text = line.decode(errors="replace")
            served.lines.append((trio.current_time(), text))
            if not served.url and (match := LISTENING.search(text)):
                served.url = match.group(1)
                listening.set()
    listening.set()  # exited: wake the waiter, which then finds no URL


@asynccontextmanager
async def serving(state_dir: Path, repo_root: Path, **env: str) -> AsyncIterator[Served]:
    """chatd serving on a free port; killed (and its PostgreSQL too) if the test leaves it."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "chatd", "serve"],
        cwd=repo_root,
        env=serve_env(state_dir, **env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # like a shell's job: Ctrl-C goes to the whole group
    )
    served = Served(process, state_dir)
    try:
        async with trio.open_nursery() as nursery:
            listening = trio.Event()
            nursery.start_soon(_read_lines, served, listening)
            try:
                with trio.fail_after(90):
                    await listening.wait()
                assert served.url, f"chatd exited before listening:\n{served.log()}"
                yield served
            finally:
                if process.returncode is None:  # the test failed: no need to read on
                    os.killpg(process.pid, signal.SIGKILL)
                    nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await process.wait()
        if (pid := running_postmaster(Cluster(state_dir))) is not None:
            os.kill(pid, signal.SIGQUIT)  # left behind by a failed test: immediate shutdown


def processes_on(pgdata: Path) -> list[int]:
    """Processes running in `pgdata`: a postmaster and its children all do."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.path.samefile(entry / "cwd", pgdata):
                    found.append(int(entry.name))
            except OSError:  # gone meanwhile, or a zombie
                continue
    return found


async def chat_with_demo_bot(client: httpx.AsyncClient, text: str, timeout: float = 15) -> str:
    """Send `text` in a new session and wait for the demo bot's reply; the reply's text."""
    session = await new_session(client)
    sent = await send(client, session, text)
    assert sent.status_code == 200, sent.text
    with trio.fail_after(timeout):
        while True:
            history = await client.get(f"/api/chat/messages/{session.id}", headers=session.auth)
            messages = history.json()["messages"] if history.status_code == 200 else []
            if len(messages) >= 2:
                assert messages[1]["senderType"] == "bot"
                return str(messages[1]["content"])
            await trio.sleep(0.05)
