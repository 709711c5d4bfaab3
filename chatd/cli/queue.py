"""`chatd queue ...`: what operators do with the webhook queue (stats, dead letters, replay, purge)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from chatd.core.durations import parse_duration
from chatd.db.pool import Pool
from chatd.db.queue import QueueStore


def add_queue_commands(commands: Any) -> None:
    queue = commands.add_parser(
        "queue",
        help="inspect and repair the webhook queue",
        description="Inspect the queue to n8n; list, replay or purge dead letters.",
    )
    actions = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    stats = actions.add_parser("stats", help="jobs by status and the age of the oldest of each")
    stats.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    dead = actions.add_parser("dead", help="list dead letters (oldest first) with their last error")
    dead.add_argument("--limit", type=int, default=100, help="how many to list (default 100)")
    dead.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    retry = actions.add_parser("retry", help="replay dead letters: back to pending, attempts reset")
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("job_id", nargs="?", help="the dead job's id (see `chatd queue dead`)")
    target.add_argument("--all", action="store_true", help="every dead letter")
    purge = actions.add_parser("purge", help="delete dead letters older than a duration")
    purge.add_argument(
        "--older-than", required=True, type=_duration, metavar="DURATION", help="e.g. 7d, 12h, 30m"
    )


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def run_queue_command(args: argparse.Namespace, pool: Pool) -> int:
    store = QueueStore(pool)
    match args.queue_command:
        case "stats":
            stats = await store.stats()
            if args.json:
                print(
                    json.dumps(
                        {
                            s: {"jobs": n, "oldest_seconds": round(age, 1)}
                            for s, (n, age) in stats.items()
                        }
                    )
                )
            else:
                print(f"{'status':<12}{'jobs':>10}{'oldest':>14}")
                for status in ("pending", "processing", "completed", "dead"):
                    jobs, age = stats.get(status, (0, 0.0))
                    print(f"{status:<12}{jobs:>10}{age:>13.0f}s")
        case "dead":
            rows = await store.dead_letters(args.limit)
            for row in rows:
                if args.json:
                    print(
                        json.dumps({k: str(v) if k == "updated_at" else v for k, v in row.items()})
                    )
                else:
                    print(
                        f"{row['id']}  session {row['session_id']}  attempts {row['attempts']}"
                        f"  HTTP {row['last_status'] or '-'}  {row['last_error'] or ''}"
                    )
            if not args.json:
                print(f"{len(rows)} dead letter(s)", file=sys.stderr)
        case "retry":
            count = await store.retry_dead(None if args.all else args.job_id)
            print(f"{count} dead letter(s) queued again")
            if count == 0 and not args.all:
                print(f"no dead letter with id {args.job_id}", file=sys.stderr)
                return 1
        case "purge":
            count = await store.purge_dead(args.older_than)
            print(f"{count} dead letter(s) deleted")
    return 0
