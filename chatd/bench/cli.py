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

SCENARIOS = ("conversation", "throughput", "idle")
PROGRESS_INTERVAL = 1.0

DESCRIPTION = """\
Load-test a running chatd, or stand in for n8n while you do.

  chatd bench conversation --url URL --duration 60      the guide's scenario (one phase)
  chatd bench conversation --url URL --phases 10:60,50:60,100:60
  chatd bench throughput --url URL --duration 30 --concurrency 20
  chatd bench idle --url URL --sessions 2000 --duration 30 --admin-token TOKEN
  chatd bench --sink --port 9999 [--delay 0.05] [--failure-rate 0.01]

Shoppers create sessions, join over WebSocket and send over HTTP, as the widget does, and wait
for each bot reply on the WebSocket. Every message is accounted for: the report says how many
were lost or duplicated. Sessions are tagged metadata.bench = <run id>.
The target must let the load in: list the bench's Origin (default: the target URL's origin) in
websocket.allowed_origins, and raise chat.rate_limit_max, chat.session_create_per_ip_max and
websocket.max_connections_per_ip for load from one address. Use a test instance: the sessions
and messages stay in its database (until cleanup).
With --json the last line of stdout is one JSON object (sessions, sent, replies, lost,
duplicated, errors, latencies in ms, throughput, the bench's own CPU); the table and progress go
to stderr. A bench using 90 % of its core or more says so: it may be the bottleneck.
"""


def add_bench_command(commands: Any) -> None:
    bench = commands.add_parser(
        "bench",
        help="load-test a chatd (conversation, throughput, idle), or run an instant n8n sink",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("scenario", nargs="?", choices=SCENARIOS, help="what load to apply")
    bench.add_argument("--url", help="the chatd to load, e.g. http://127.0.0.1:8000")
    bench.add_argument(
        "--duration", type=_positive, default=30.0, metavar="SECONDS", help="default 30"
    )
    bench.add_argument("--json", action="store_true", help="end with one JSON line on stdout")
    bench.add_argument(
        "--rate", type=_positive, default=5.0, help="conversation: shoppers arriving per second"
    )
    bench.add_argument(
        "--phases",
        metavar="RATE:SECONDS,...",
        help="conversation: arrival phases, e.g. the guide's 10:60,50:60,100:60 (overrides"
        " --rate and --duration)",
    )
    bench.add_argument(
        "--messages", type=_count, default=5, help="messages per session (default 5)"
    )
    bench.add_argument(
        "--think", type=_non_negative, default=2.0, help="conversation: seconds between messages"
    )
    bench.add_argument(
        "--concurrency", type=_count, default=10, help="throughput: shoppers at once (default 10)"
    )
    bench.add_argument("--sessions", type=_count, default=100, help="idle: sessions to hold")
    bench.add_argument(
        "--connecting", type=_count, default=32, help="idle: joins in flight at once (default 32)"
    )
    bench.add_argument(
        "--message-size", type=_count, default=32, help="characters per message (default 32)"
    )
    bench.add_argument("--origin", help="Origin header of the WebSockets (default: --url's)")
    bench.add_argument("--admin-token", help="idle: admin.token of the target, to broadcast")
    bench.add_argument(
        "--reply-timeout",
        type=_positive,
        default=30.0,
        help="a reply later than this counts as lost (seconds, default 30)",
    )
    bench.add_argument(
        "--connections",
        type=_count,
        default=100,
        help="HTTP connections to the target, at most (one httpx transport each; no proxy)",
    )
    sink = bench.add_argument_group("sink (an instant n8n stand-in)")
    sink.add_argument("--sink", action="store_true", help="serve as n8n instead of loading")
    sink.add_argument("--host", default="127.0.0.1", help="sink: address (default 127.0.0.1)")
    sink.add_argument("--port", type=int, default=9999, help="sink: port (0: any free)")
    sink.add_argument(
        "--delay", type=_non_negative, default=0.0, help="sink: seconds before each answer"
    )
    sink.add_argument(
        "--failure-rate", type=_share, default=0.0, help="sink: share of requests answered 503"
    )


def run_bench(args: argparse.Namespace) -> int:
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
    if args.json:
        print(json.dumps(report.as_dict()), flush=True)
    return 0 if not report.lost and not report.duplicated else 1


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


def _number(text: str, *, low: float, strict: bool, high: float | None = None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < low or (strict and value == low) or (high is not None and value > high):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise argparse.ArgumentTypeError(
            f"must be {bound}{'' if high is None else f' and <= {high:g}'} (got {text})"
        )
    return value


def _positive(text: str) -> float:
    return _number(text, low=0, strict=True)


def _non_negative(text: str) -> float:
    return _number(text, low=0, strict=False)


def _share(text: str) -> float:
    return _number(text, low=0, strict=False, high=1)


def _count(text: str) -> int:
    value = _number(text, low=1, strict=False)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number (got {text})")
    return int(value)
