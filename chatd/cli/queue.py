"""`chatd queue ...`: what operators do with the webhook queue (stats, dead letters, replay, purge)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import trio

from chatd.cli.database import command_settings, open_command_pool
from chatd.core.responses import wire
from chatd.db.admin import AdminStore
from chatd.db.pool import Pool
from chatd.db.queue import QueueStore
from chatd.settings import Settings


def run(args: argparse.Namespace) -> int:
    settings, state_dir = command_settings(args)
    return trio.run(_run, settings, state_dir, args)


async def _run(settings: Settings, state_dir: Path, args: argparse.Namespace) -> int:
    async with open_command_pool(settings, state_dir) as pool:
        return await run_queue_command(args, pool)


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
            dead = await AdminStore(pool).dead_letters(args.limit)
            for letter in dead:
                if args.json:
                    print(json.dumps(wire(letter.to_out())))
                else:
                    print(
                        f"{letter.id}  session {letter.session_id}  attempts {letter.attempts}"
                        f"  HTTP {letter.last_status or '-'}  {letter.last_error or ''}"
                    )
            if not args.json:
                print(f"{len(dead)} dead letter(s)", file=sys.stderr)
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
