"""`chatd bench ...`: arguments, the live progress line and the final report."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from functools import partial
from typing import Any

import trio

from chatd.bench.http import open_http_clients
from chatd.bench.scenarios import conversation, idle, parse_phases, throughput
from chatd.bench.shopper import Target
from chatd.bench.sink import SinkConfig, SinkStats, serve_sink
from chatd.bench.stats import Report, Tally

PROGRESS_INTERVAL = 1.0


def run(args: argparse.Namespace) -> int:
    if args.sink:
        return trio.run(_sink, args)
    if args.scenario is None or not args.url:
        print("chatd bench: give a scenario and --url (or --sink); see --help", file=sys.stderr)
        return 2
    try:
        target = Target.make(
            args.url,
            origin=args.origin,
            message_size=args.message_size,
            reply_timeout=args.reply_timeout,
        )
        phases = parse_phases(args.phases) if args.phases else None
    except ValueError as exc:
        print(f"chatd bench: {exc}", file=sys.stderr)
        return 2
    report = trio.run(_load, args, target, phases)
    print(report.table(), file=sys.stderr if args.json else sys.stdout)
    for warning in report.warnings():
        print(f"chatd bench: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.as_dict()), flush=True)
    return 0 if report.measured and not report.lost and not report.duplicated else 1


async def _load(args: argparse.Namespace, target: Target, phases: Any) -> Report:
    tally = Tally()
    extra: dict[str, Any] = {"run_id": target.run_id}
    clients = open_http_clients(
        target.url, connections=args.connections, request_seconds=args.reply_timeout
    )
    async with clients as http, trio.open_nursery() as nursery:
        started, cpu_started = trio.current_time(), time.process_time()
        nursery.start_soon(_progress, tally, started)
        match args.scenario:
            case "conversation":
                await conversation(
                    target,
                    http,
                    tally,
                    phases or parse_phases(f"{args.rate}:{args.duration}"),
                    messages=args.messages,
                    think=args.think,
                )
            case "throughput":
                await throughput(
                    target,
                    http,
                    tally,
                    concurrency=args.concurrency,
                    seconds=args.duration,
                    messages_per_session=args.messages,
                )
            case _:
                extra |= await idle(
                    target,
                    http,
                    tally,
                    sessions=args.sessions,
                    seconds=args.duration,
                    admin_token=args.admin_token,
                    connecting=args.connecting,
                )
        seconds = trio.current_time() - started
        cpu_seconds = time.process_time() - cpu_started
        nursery.cancel_scope.cancel()
    print(file=sys.stderr)
    return Report.from_tally(args.scenario, target.url, seconds, cpu_seconds, tally, **extra)


async def _progress(tally: Tally, started: float) -> None:
    """Once a second: one line, rewritten in place on a terminal, appended otherwise."""
    terminal = sys.stderr.isatty()
    while True:
        await trio.sleep(PROGRESS_INTERVAL)
        line = tally.progress_line(trio.current_time() - started)
        print(
            f"\r{line}\033[K" if terminal else line,
            end="" if terminal else "\n",
            file=sys.stderr,
            flush=True,
        )


async def _sink(args: argparse.Namespace) -> int:
    stats = SinkStats()
    config = SinkConfig(delay=args.delay, failure_rate=args.failure_rate)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(serve_sink, args.host, args.port, config, stats))
            print(
                f'chatd bench sink listening on {url} (set n8n.webhook_url = "{url}/webhook";'
                f" delay {args.delay}s, failure rate {args.failure_rate})",
                flush=True,
            )
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()
    print(json.dumps({"requests": stats.requests, "failed": stats.failed}), flush=True)
    return 0
