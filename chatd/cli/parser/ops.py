"""The grammar of the operator's commands on stored data: queue, cleanup, export."""

from __future__ import annotations

import argparse
from pathlib import Path

from chatd.cli.argtypes import duration, rating_filter, when
from chatd.cli.parser.common import Command, anywhere

QUEUE_DESCRIPTION = "Inspect the queue to n8n; list, replay or purge dead letters."

CLEANUP_DESCRIPTION = """\
Delete, in batches of maintenance.batch_size rows (one short transaction each):
  - expired sessions (expires_at in the past), with their messages and webhook jobs;
  - sessions created more than maintenance.session_retention_days ago, expired or not;
  - completed webhook jobs older than maintenance.completed_job_retention_days (messages stay);
  - dead letters not touched for maintenance.dead_letter_retention_days (messages stay, failed).
A session with a message still to deliver to n8n (a pending or processing job) is never deleted;
the summary counts it as "kept (undelivered)". A running chatd does the same every
maintenance.interval_seconds. Only one cleanup runs at a time across all chatd processes: if
another holds the lock, this one waits for it (up to --wait seconds), then exits 1.
"""

EXPORT_DESCRIPTION = """\
Print one JSON line per session, oldest first: {"session": {...}, "messages": [...], "audit":
[...]}, the shapes of the HTTP API (never the session token or its hash); "audit" is who asked
for a person, took, replied, transferred, handed back and closed, and when ([audit] lines in
--format text). Staff's internal notes are never exported. A session is included when its lifetime
(created to last updated) overlaps [--since, --until). WHEN is a date (2026-11-01, midnight UTC),
a date and time (2026-11-01T10:00:00Z; without a zone, UTC) or a duration back from now (7d,
12h, 30m). --tag, --rating, --query, --user-id, --email, --handoff, --state and --agent narrow
it further (all must match); any of them, --since or --session is needed. Sessions are read page by page: any range fits in memory.
"""


def add_queue(command: Command) -> None:
    queue = command(
        "queue", help="inspect and repair the webhook queue", description=QUEUE_DESCRIPTION
    )
    actions = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    stats = actions.add_parser(
        "stats", parents=[anywhere()], help="jobs by status and the age of the oldest of each"
    )
    stats.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    dead = actions.add_parser(
        "dead", parents=[anywhere()], help="list dead letters (oldest first) with their last error"
    )
    dead.add_argument("--limit", type=int, default=100, help="how many to list (default 100)")
    dead.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    retry = actions.add_parser(
        "retry", parents=[anywhere()], help="replay dead letters: back to pending, attempts reset"
    )
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("job_id", nargs="?", help="the dead job's id (see `chatd queue dead`)")
    target.add_argument("--all", action="store_true", help="every dead letter")
    purge = actions.add_parser(
        "purge", parents=[anywhere()], help="delete dead letters older than a duration"
    )
    purge.add_argument(
        "--older-than", required=True, type=duration, metavar="DURATION", help="e.g. 7d, 12h, 30m"
    )


def add_ops(command: Command) -> None:
    _cleanup(command)
    _export(command)


def _cleanup(command: Command) -> None:
    cleanup = command(
        "cleanup",
        help="delete expired and old sessions, old completed jobs and dead letters now",
        description=CLEANUP_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cleanup.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted; delete nothing"
    )
    cleanup.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    cleanup.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for another chatd's cleanup to finish (default 60; 0: do not wait)",
    )


def _export(command: Command) -> None:
    export = command(
        "export",
        help="export conversations as JSON lines (one per session)",
        description=EXPORT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument(
        "--since",
        type=when,
        metavar="WHEN",
        help="start of the range (required unless --session is given)",
    )
    export.add_argument("--until", type=when, metavar="WHEN", help="end of the range (default now)")
    export.add_argument(
        "--session",
        action="append",
        metavar="ID",
        help="only this session (repeat for several); with --since/--until, both must match",
    )
    export.add_argument(
        "--tag", metavar="TAG", help="only conversations with this tag (e.g. refund)"
    )
    export.add_argument(
        "--rating",
        type=rating_filter,
        metavar="RATING",
        help="only conversations the shopper rated RATING (1-5), or: rated, unrated",
    )
    export.add_argument(
        "--query",
        metavar="WORDS",
        help="only conversations with a message matching this full-text search (search.language;"
        ' "a phrase", -not, or)',
    )
    export.add_argument(
        "--handoff",
        choices=["yes", "no"],
        help="only conversations handed to a person at some point (yes), or never (no)",
    )
    export.add_argument(
        "--state",
        choices=["bot", "waiting", "human", "closed"],
        help="only conversations in this state now (who answers them)",
    )
    export.add_argument(
        "--agent",
        metavar="ID_OR_EMAIL",
        help="only conversations this agent took, answered, was passed, handed back or closed",
    )
    shopper = export.add_mutually_exclusive_group()
    shopper.add_argument("--user-id", metavar="ID", help="only this shopper's (by user id)")
    shopper.add_argument("--email", metavar="EMAIL", help="only this guest's (by email)")
    export.add_argument(
        "--format",
        choices=["jsonl", "text"],
        default="jsonl",
        help="jsonl (default): one JSON object per line; text: readable transcripts",
    )
    export.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="write here (atomically: a temporary file renamed when complete) instead of stdout",
    )
