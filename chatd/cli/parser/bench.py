"""The grammar of `chatd bench`: the load scenarios and the n8n sink."""

from __future__ import annotations

import argparse

from chatd.cli.argtypes import count, non_negative, positive, share
from chatd.cli.parser.common import Command

BENCH_DESCRIPTION = """\
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
websocket.allowed_origins, and raise its limits for load from one address, e.g.
  CHATD_CHAT__RATE_LIMIT_MAX=1000000 CHATD_CHAT__SESSION_CREATE_PER_IP_MAX=1000000
  CHATD_WEBSOCKET__MAX_CONNECTIONS_PER_IP=100000 chatd serve
A run that hits a limit says which one; one that measured no reply exits 1. Use a test
instance: the sessions and messages stay in its database (until cleanup).
With --json the last line of stdout is one JSON object (sessions, sent, replies, lost,
duplicated, errors, latencies in ms, throughput, the bench's own CPU); the table and progress go
to stderr. A bench using 90 % of its core or more says so: it may be the bottleneck.
"""


BENCH_SCENARIOS = ("conversation", "throughput", "idle")


def add_bench(command: Command) -> None:
    bench = command(
        "bench",
        help="load-test a chatd (conversation, throughput, idle), or run an instant n8n sink",
        description=BENCH_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("scenario", nargs="?", choices=BENCH_SCENARIOS, help="what load to apply")
    bench.add_argument("--url", help="the chatd to load, e.g. http://127.0.0.1:8000")
    bench.add_argument(
        "--duration", type=positive, default=30.0, metavar="SECONDS", help="default 30"
    )
    bench.add_argument("--json", action="store_true", help="end with one JSON line on stdout")
    bench.add_argument(
        "--rate", type=positive, default=5.0, help="conversation: shoppers arriving per second"
    )
    bench.add_argument(
        "--phases",
        metavar="RATE:SECONDS,...",
        help="conversation: arrival phases, e.g. the guide's 10:60,50:60,100:60 (overrides"
        " --rate and --duration)",
    )
    bench.add_argument("--messages", type=count, default=5, help="messages per session (default 5)")
    bench.add_argument(
        "--think", type=non_negative, default=2.0, help="conversation: seconds between messages"
    )
    bench.add_argument(
        "--concurrency", type=count, default=10, help="throughput: shoppers at once (default 10)"
    )
    bench.add_argument("--sessions", type=count, default=100, help="idle: sessions to hold")
    bench.add_argument(
        "--connecting", type=count, default=32, help="idle: joins in flight at once (default 32)"
    )
    bench.add_argument(
        "--message-size", type=count, default=32, help="characters per message (default 32)"
    )
    bench.add_argument("--origin", help="Origin header of the WebSockets (default: --url's)")
    bench.add_argument("--admin-token", help="idle: admin.token of the target, to broadcast")
    bench.add_argument(
        "--reply-timeout",
        type=positive,
        default=30.0,
        help="a reply later than this counts as lost (seconds, default 30)",
    )
    bench.add_argument(
        "--connections",
        type=count,
        default=100,
        help="HTTP connections to the target, at most (one httpx transport each; no proxy)",
    )
    sink = bench.add_argument_group("sink (an instant n8n stand-in)")
    sink.add_argument("--sink", action="store_true", help="serve as n8n instead of loading")
    sink.add_argument("--host", default="127.0.0.1", help="sink: address (default 127.0.0.1)")
    sink.add_argument("--port", type=int, default=9999, help="sink: port (0: any free)")
    sink.add_argument(
        "--delay", type=non_negative, default=0.0, help="sink: seconds before each answer"
    )
    sink.add_argument(
        "--failure-rate", type=share, default=0.0, help="sink: share of requests answered 503"
    )
