"""Run `chatd serve` as a subprocess (for benchmarks and fault drills) and return its URL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

LISTENING = re.compile(rb"chatd is listening on (http://\S+)")


@asynccontextmanager
async def chatd_process(
    database_url: str,
    *,
    on_output: Callable[[bytes], None] | None = None,
    graceful: bool = True,
    **env: str,
) -> AsyncIterator[tuple[str, trio.Process]]:
    """`chatd serve` on a free port; `on_output` sees its stderr (the log) as it comes. On the
    way out it gets SIGTERM and 30 s (graceful) or SIGKILL."""
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
        if on_output is not None:
            on_output(output)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_pump, process.stderr, on_output or (lambda _chunk: None))
            yield match.group(1).decode(), process
            if graceful:
                process.terminate()
                with trio.fail_after(30):
                    await process.wait()
            else:
                process.kill()
    finally:
        if process.returncode is None:
            process.kill()
        with trio.move_on_after(10):
            await process.wait()


async def _pump(stream: trio.abc.ReceiveStream, on_output: Callable[[bytes], None]) -> None:
    async for chunk in stream:
        on_output(bytes(chunk))
