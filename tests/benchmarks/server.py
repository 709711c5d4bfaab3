"""Run `chatd serve` as a subprocess for a benchmark and return its URL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

LISTENING = re.compile(rb"chatd is listening on (http://\S+)")


@asynccontextmanager
async def chatd_process(database_url: str, **env: str) -> AsyncIterator[tuple[str, trio.Process]]:
    environ = {
        **os.environ,
        "CHATD_DATABASE__URL": database_url,
        "CHATD_SERVER__PORT": "0",
        "CHATD_LOG__LEVEL": "warning",
        "CHATD_CHAT__RATE_LIMIT_MAX": "100000000",
        "CHATD_CHAT__SESSION_CREATE_PER_IP_MAX": "100000000",
        **env,
    }
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "chatd", "serve"],
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    output = b""
    try:
        with trio.fail_after(60):
            while not (match := LISTENING.search(output)):
                chunk = await process.stderr.receive_some()
                if not chunk:
                    raise RuntimeError(output.decode(errors="replace"))
                output += chunk
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_discard, process.stderr)
            yield match.group(1).decode(), process
            process.terminate()
            with trio.fail_after(30):
                await process.wait()
    finally:
        if process.returncode is None:
            process.kill()


async def _discard(stream: trio.abc.ReceiveStream) -> None:
    async for _ in stream:
        pass
