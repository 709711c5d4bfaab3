"""`chatd serve`, `chatd bench --sink` and `chatd bench` as subprocesses (benchmarks, drills)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

LISTENING = re.compile(rb"chatd is listening on (http://\S+)")
SINK_LISTENING = re.compile(rb"sink listening on (http://\S+)")


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


@asynccontextmanager
async def bench_sink(*args: str) -> AsyncIterator[tuple[str, trio.Process]]:
    """`chatd bench --sink` on a free port (extra `args`: --delay, --failure-rate)."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "chatd", "bench", "--sink", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    output = b""
    try:
        with trio.fail_after(30):
            while not (match := SINK_LISTENING.search(output)):
                chunk = await process.stdout.receive_some()
                if not chunk:
                    raise RuntimeError(output.decode(errors="replace"))
                output += chunk
        yield match.group(1).decode(), process
    finally:
        process.terminate()
        with trio.move_on_after(10):
            await process.wait()
        if process.returncode is None:
            process.kill()


async def run_bench(*args: str) -> tuple[dict[str, Any], str]:
    """`chatd bench ... --json`: (the report's JSON line, the table and progress on stderr)."""
    result = await trio.run_process(
        [sys.executable, "-m", "chatd", "bench", *args, "--json"],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode in (0, 1), stderr[-3000:]  # 1: something was lost or duplicated
    report: dict[str, Any] = json.loads(result.stdout.decode().strip().splitlines()[-1])
    return report, stderr
