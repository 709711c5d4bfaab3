"""A sink that is never the bottleneck, and the raw-httpx baseline to measure against it.

    python -m tests.benchmarks.fastsink serve [--body JSON]
        A raw-socket HTTP/1.1 server on Trio: every request (any method, any path) gets the same
        prebuilt 200 response with the JSON body, on a keep-alive connection. Prints
        "fastsink listening on http://127.0.0.1:PORT" on stdout; on SIGTERM/SIGINT prints one
        JSON line {"requests": N, "first": perf, "last": perf} and exits (perf:
        time.perf_counter(), CLOCK_MONOTONIC, comparable across processes on Linux).

    python -m tests.benchmarks.fastsink post URL --concurrency C --seconds S --body-size B
        The baseline: chatd's own senders (chatd.queue.sender.open_senders as chatd opens them
        for queue.concurrency = C, one per task; the same headers as the dispatcher) POSTing a
        B-byte JSON body back to back from C tasks for S seconds. Prints one JSON line
        {"requests": N, "seconds": T, "cpu": CPU seconds of the client over T, "errors": E,
        "statuses": {...}}.

Both run in their own process so neither shares a GIL with what it is measured against.
`fast_sink` and `raw_post_rate` start them from a Trio test; `cpu_seconds` and `postgres_cpu`
account for where the CPU went.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

from chatd.bench.sink import SinkConfig, SinkStats, serve_sink

LISTENING = re.compile(rb"fastsink listening on (http://\S+)")
DEFAULT_BODY = '{"output":"ok"}'


# --- the server ---------------------------------------------------------------------------------


async def _serve(body: bytes) -> None:
    """chatd bench's sink (chatd/bench/sink.py), answering `body`, until SIGTERM/SIGINT."""
    stats = SinkStats()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(
                partial(serve_sink, "127.0.0.1", 0, SinkConfig(body=body), stats)
            )
            print(f"fastsink listening on {url}", flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()
    print(json.dumps({"requests": stats.requests, "first": stats.first, "last": stats.last}))


# --- the baseline client ------------------------------------------------------------------------


def payload_of_size(size: int) -> bytes:
    """A chatd-shaped webhook body of exactly `size` bytes (padding in the message content)."""
    base = {
        "sessionId": "00000000-0000-0000-0000-000000000000",
        "messageId": "00000000-0000-0000-0000-000000000000",
        "seq": 1,
        "userId": None,
        "guestEmail": None,
        "message": {"content": "", "type": "text", "timestamp": "2025-01-01T00:00:00.000000Z"},
        "userContext": {"isAuthenticated": False},
        "sessionMetadata": {},
        "callbackUrl": "http://127.0.0.1:8000/api/chat/webhook",
        "deliveryId": "00000000-0000-0000-0000-000000000000",
    }
    empty = len(json.dumps(base, separators=(",", ":")))
    base["message"]["content"] = "x" * max(0, size - empty)  # type: ignore[index]
    return json.dumps(base, separators=(",", ":")).encode()


async def _post(url: str, concurrency: int, seconds: float, body_size: int) -> None:
    from chatd.queue.sender import SenderConfig, WebhookSender, open_senders

    # Exactly what chatd.process builds from the default [n8n] settings: one sender per worker.
    config = SenderConfig(10.0, 5.0, 1 << 20)
    body = payload_of_size(body_size)
    headers = {"Content-Type": "application/json", "User-Agent": "chatd", "X-Chatd-Attempt": "1"}
    statuses: dict[str, int] = {}
    errors = 0
    done = 0
    async with open_senders(config, url, concurrency) as senders:
        for sender in senders:  # warm the connections, as a running chatd has them
            await sender.post(url, body, headers)
        stop = False

        async def worker(sender: WebhookSender) -> None:
            nonlocal done, errors
            while not stop:
                attempt = await sender.post(url, body, headers)
                if attempt.status is None:
                    errors += 1
                else:
                    key = str(attempt.status)
                    statuses[key] = statuses.get(key, 0) + 1
                done += 1

        async with trio.open_nursery() as nursery:
            for sender in senders:
                nursery.start_soon(worker, sender)
            started, cpu = time.perf_counter(), time.process_time()
            await trio.sleep(seconds)
            counted, elapsed = done, time.perf_counter() - started
            cpu = time.process_time() - cpu
            stop = True
    print(
        json.dumps(
            {
                "requests": counted,
                "seconds": elapsed,
                "cpu": cpu,
                "errors": errors,
                "statuses": statuses,
            }
        ),
        flush=True,
    )


# --- from a Trio test ---------------------------------------------------------------------------


class FastSink:
    def __init__(self, url: str, process: trio.Process) -> None:
        self.url = url
        self.process = process
        self.stats: SinkStats | None = None  # set when the sink has stopped

    @property
    def pid(self) -> int:
        return self.process.pid


def _environ() -> dict[str, str]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }


async def wait_listening(
    process: trio.Process, pattern: re.Pattern[bytes], name: str
) -> tuple[re.Match[bytes], bytes]:
    """Read a server subprocess's stdout until it says where it listens (30 s at most)."""
    assert process.stdout is not None
    output = b""
    with trio.fail_after(30):
        while not (match := pattern.search(output)):
            chunk = await process.stdout.receive_some()
            if not chunk:
                raise RuntimeError(f"{name} did not start: {output!r}")
            output += chunk
    return match, output


@asynccontextmanager
async def fast_sink(body: str = DEFAULT_BODY) -> AsyncIterator[FastSink]:
    """The server in a subprocess; its request count is in `.stats` after the block."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.benchmarks.fastsink", "serve", "--body", body],
        env=_environ(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        match, output = await wait_listening(process, LISTENING, "fastsink")
        sink = FastSink(match.group(1).decode(), process)
        yield sink
        process.terminate()
        with trio.fail_after(10):
            async for chunk in process.stdout:
                output += chunk
            await process.wait()
        last = output.strip().splitlines()[-1]
        sink.stats = SinkStats(**json.loads(last))
    finally:
        if process.returncode is None:
            process.kill()


async def raw_post_rate(
    url: str, *, concurrency: int, seconds: float, body_size: int
) -> dict[str, Any]:
    """Run the baseline client in its own process; its JSON result."""
    result = await trio.run_process(
        [
            sys.executable,
            "-m",
            "tests.benchmarks.fastsink",
            "post",
            url,
            "--concurrency",
            str(concurrency),
            "--seconds",
            str(seconds),
            "--body-size",
            str(body_size),
        ],
        env=_environ(),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(result.stderr.decode(errors="replace"))
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- process accounting -------------------------------------------------------------------------


def load_average(before: tuple[float, ...] | None = None) -> str:
    """The machine's load average (before the run and now): other work skews every figure."""
    now = "/".join(f"{v:.1f}" for v in os.getloadavg())
    then = "before " + "/".join(f"{v:.1f}" for v in before) + ", after " if before else ""
    return f"load average (1/5/15 min) {then}{now} on {os.cpu_count()} CPUs"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (0 if it is gone), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu(conn: Any) -> dict[int, float]:
    """CPU seconds so far of every process of the cluster that pg_stat_activity shows (backends,
    walwriter, checkpointer...); a test cluster serves only its own test run. Sum the
    differences of two snapshots, a pid missing from the first counting from 0."""
    pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity").fetchall()]
    return {pid: cpu_seconds(pid) for pid in pids}


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def database_transactions(conn: Any) -> int:
    """Commits + rollbacks so far in the connection's database."""
    row = conn.execute(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database"
        " WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    return int(row[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fastsink")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve")
    serve.add_argument("--body", default=DEFAULT_BODY)
    post = commands.add_parser("post")
    post.add_argument("url")
    post.add_argument("--concurrency", type=int, default=5)
    post.add_argument("--seconds", type=float, default=5.0)
    post.add_argument("--body-size", type=int, default=400)
    args = parser.parse_args(argv)
    if args.command == "serve":
        trio.run(_serve, args.body.encode())
    else:
        trio.run(_post, args.url, args.concurrency, args.seconds, args.body_size)


if __name__ == "__main__":
    main()
