"""The grammar of `chatd`: every command, option and help text, and nothing else.

It imports only the standard library, so `chatd --help` and a typo answer at once; each
command's module (and the server stack behind it) is imported only when that command runs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatd.cli.argtypes import (
    count,
    duration,
    non_negative,
    positive,
    rating_filter,
    share,
    when,
)

DESCRIPTION = """\
chatd: the chat back end of an online shop. Shoppers' messages are stored in PostgreSQL, queued
durably and delivered to an n8n workflow; the bot's replies come back to the browser.

Configuration: --config FILE (TOML; every key is documented in config.toml), then environment
variables CHATD_<SECTION>__<KEY> (e.g. CHATD_SERVER__PORT=9000) and the guide's names
(DATABASE_URL, CHAT_WEBHOOK_SECRET, CHAT_N8N_WEBHOOK_URL, CHAT_SESSION_TIMEOUT, ...).
With no database.url, an embedded PostgreSQL runs in the state directory. With no
n8n.webhook_url, a built-in demo bot answers and GET / serves a demo shop with the chat widget.
Shops embed the widget with <script src="{chatd}/widget.js" async></script> and list their
origin in websocket.allowed_origins; shops already embedding n8n's @n8n/chat point its
webhookUrl at /api/n8n-chat ([n8n_chat] enabled = true). --config and --state-dir go before or
after the command.

Staff: the inbox at /inbox, where people take over a chat from the bot (accounts: chatd agent
add), with business hours and who is online ([inbox]); outside hours or with nobody online a
shopper is told when to expect an answer and may leave an email, and the staff are alerted
(alerts.webhook_url, [alert_email] over SMTP); search, tags and a shopper's data on the admin
page; charts at /admin/analytics.

Operations: /livez, /readyz and /api/chat/health; /metrics (Prometheus; metrics.token,
metrics.listen); the admin page at /admin with admin.token; alerts to alerts.webhook_url;
periodic cleanup ([maintenance]). Under systemd (systemd/chatd.service) chatd speaks sd_notify
(READY, WATCHDOG, STATUS, STOPPING), reads secrets from $CREDENTIALS_DIRECTORY, and reloads
[admin], [inbox], metrics.token, [alerts], [alert_email] and [maintenance] on SIGHUP (systemctl
reload chatd).

Exit status: 0 done; 1 failed (e.g. PostgreSQL down); 2 bad usage or configuration (a key, a
port or state directory in use, a database that refuses chatd): starting again will not help.
"""

STATE_DIR_HELP = (
    "where the embedded PostgreSQL keeps its data (default: $CHATD_STATE_DIR, systemd's"
    " $STATE_DIRECTORY, /var/lib/chatd as root, else ~/.local/state/chatd, or"
    " $XDG_STATE_HOME/chatd if that is set)"
)

SERVE_DESCRIPTION = """\
Run chatd until SIGTERM or SIGINT (SIGHUP reloads what can change safely). It serves the API
under /api/chat, the widget at /widget.js, the admin page at /admin, /metrics, and, in demo
mode (no n8n.webhook_url), a demo shop at /. Before anything slow starts it checks the
configuration, that the port is free and that the state directory is not in use. With a
configured database.url that is down at start, it waits for it (systemd sees no READY until
then); a database that refuses chatd (wrong password, no such database or role) stops it.
"""

N8N_CHECK_DESCRIPTION = """\
Send one signed test request to n8n.webhook_url, with the headers and body shape chatd's
deliveries have (metadata.chatdCheck = true marks it as a test), and say what came back: a reply
(shown), an acknowledgement without one (fine in callback mode), or what is wrong and what to do
(404: the workflow is not active or the path is wrong; 401/403: n8n.webhook_secret does not match
the Webhook node's Header Auth; 5xx, a timeout, a refused connection, a TLS error, a redirect).
Exit 0 when n8n answered 2xx, else 1.
"""

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

SHOPPER_DESCRIPTION = """\
A shopper's data on request (a GDPR-style "give me my data" or "delete everything about me").
Name the shopper by --user-id (the shop's id for them, exact) or --email (the email a guest
gave, ignoring case). Their conversations are every session with that user id or email.
Attachments are links in messages (chatd stores no files): they are exported and deleted with
the messages; the files they point to are the shop's to delete.
"""

SHOPPER_DELETE_DESCRIPTION = """\
Delete every conversation of one shopper with all that hangs on it: messages (and their search
index entries), queued deliveries to n8n, tags. It first says what will go and asks you to type
yes (--yes: do not ask, for scripts). Then an audit record is written: when, by whom ("cli"),
whether a user id or an email, a salted hash of it, and how many rows went from each table,
never the deleted content (GET /api/admin/shoppers/erasures lists them). The tables are vacuumed
afterwards so the deleted bytes leave the files now. A shopper with nothing stored is recorded
too: the request was answered. Exit 1 when not confirmed (nothing deleted).
"""

SEARCH_DESCRIPTION = """\
Full-text search indexes each message with the language (search.language, a PostgreSQL text
search configuration) set when it was stored. After changing search.language, reindex moves the
messages already stored to the new one, in batches of 1,000 (short transactions, safe while
chatd serves); --all reindexes every message (after a dictionary changed).
"""

BENCH_SCENARIOS = ("conversation", "throughput", "idle")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatd", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _global_options(parser, default_config=os.environ.get("CHATD_CONFIG") or None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[_anywhere()], **kwargs)

    _serve(command)
    command(
        "migrate",
        help="apply pending database migrations and exit",
        description="Apply pending migrations (safe to run from several processes at once).",
    )
    _queue(command)
    _agent(command)
    _bench(command)
    _ops(command)
    _shopper(command)
    _n8n(command)
    return parser


def _anywhere() -> argparse.ArgumentParser:
    """The global options again, for after a command (`chatd serve --state-dir X`). SUPPRESS:
    a value given before the command stands unless one is given after it."""
    parent = argparse.ArgumentParser(add_help=False)
    _global_options(parent, default_config=argparse.SUPPRESS, state_dir=argparse.SUPPRESS)
    return parent


def _global_options(
    parser: argparse.ArgumentParser, *, default_config: object, state_dir: object = None
) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        default=default_config,
        help="TOML config file (default: $CHATD_CONFIG, else built-in defaults)",
    )
    parser.add_argument(
        "--state-dir", type=Path, metavar="DIR", default=state_dir, help=STATE_DIR_HELP
    )


Command = Callable[..., argparse.ArgumentParser]  # adds a command with the global options


def _serve(command: Command) -> None:
    serve = command(
        "serve",
        help="run the chat server (HTTP API, WebSocket, widget, actors, database)",
        description=SERVE_DESCRIPTION,
    )
    serve.add_argument("--host", help="address to listen on (server.host; default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, help="port to listen on (server.port; default 8000; 0 = any free)"
    )
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply migrations on start; refuse to start if any are pending",
    )


def _queue(command: Command) -> None:
    queue = command(
        "queue", help="inspect and repair the webhook queue", description=QUEUE_DESCRIPTION
    )
    actions = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    stats = actions.add_parser(
        "stats", parents=[_anywhere()], help="jobs by status and the age of the oldest of each"
    )
    stats.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    dead = actions.add_parser(
        "dead", parents=[_anywhere()], help="list dead letters (oldest first) with their last error"
    )
    dead.add_argument("--limit", type=int, default=100, help="how many to list (default 100)")
    dead.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    retry = actions.add_parser(
        "retry", parents=[_anywhere()], help="replay dead letters: back to pending, attempts reset"
    )
    target = retry.add_mutually_exclusive_group(required=True)
    target.add_argument("job_id", nargs="?", help="the dead job's id (see `chatd queue dead`)")
    target.add_argument("--all", action="store_true", help="every dead letter")
    purge = actions.add_parser(
        "purge", parents=[_anywhere()], help="delete dead letters older than a duration"
    )
    purge.add_argument(
        "--older-than", required=True, type=duration, metavar="DURATION", help="e.g. 7d, 12h, 30m"
    )


AGENT_DESCRIPTION = """\
Manage the staff who answer shoppers in the inbox (/inbox). Roles: admin (everything, the admin
page included) and agent (works conversations). Passwords are never taken on the command line:
they are asked for at a terminal, or read as one line from standard input (for scripts:
`printf '%s\\n' "$PASSWORD" | chatd agent add ...`). At least 12 characters. Disabling an
account or resetting its password signs it out of every browser at once.
"""


def _agent(command: Command) -> None:
    agent = command(
        "agent",
        help="manage staff accounts for the inbox (add, list, disable, reset-password)",
        description=AGENT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = agent.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", parents=[_anywhere()], help="create an account (asks for its password)"
    )
    add.add_argument("email", help="the sign-in email (unique, case ignored)")
    add.add_argument("--name", required=True, help="the name shoppers see, e.g. Anna")
    add.add_argument("--role", choices=["agent", "admin"], default="agent", help="default agent")
    listing = actions.add_parser("list", parents=[_anywhere()], help="every account")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    disable = actions.add_parser(
        "disable", parents=[_anywhere()], help="disable an account and sign it out everywhere"
    )
    disable.add_argument("email")
    reset = actions.add_parser(
        "reset-password",
        parents=[_anywhere()],
        help="set a new password (asks for it) and sign the account out everywhere",
    )
    reset.add_argument("email")


def _ops(command: Command) -> None:
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


def _shopper(command: Command) -> None:
    shopper = command(
        "shopper",
        help="a shopper's data on request: export it, or delete it with an audit record",
        description=SHOPPER_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = shopper.add_subparsers(dest="shopper_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        parents=[_anywhere(), _who()],
        help="print all their conversations, messages and attachment links",
        description="Print everything stored about one shopper, oldest conversation first, on"
        " stdout (a summary on stderr): json (default), one document {shopper, exportedAt,"
        " sessions: [{session, messages}]}, or text (readable transcripts).",
    )
    export.add_argument(
        "--format", choices=["json", "text"], default="json", help="json (default) or text"
    )
    delete = actions.add_parser(
        "delete",
        parents=[_anywhere(), _who()],
        help="delete all their conversations (asks first; --yes for scripts), with an audit record",
        description=SHOPPER_DELETE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    search = command("search", help="the full-text search index", description=SEARCH_DESCRIPTION)
    search_actions = search.add_subparsers(dest="search_command", required=True, metavar="ACTION")
    reindex = search_actions.add_parser(
        "reindex",
        parents=[_anywhere()],
        help="index stored messages with search.language (after changing it)",
        description=SEARCH_DESCRIPTION,
    )
    reindex.add_argument(
        "--all", action="store_true", help="every message, also those indexed with it already"
    )


def _who() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    who = parent.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id", metavar="ID", help="the shopper's user id (exact)")
    who.add_argument("--email", metavar="EMAIL", help="the guest's email (ignoring case)")
    return parent


def _n8n(command: Command) -> None:
    workflow = command(
        "n8n-workflow",
        help="print an importable n8n workflow wired to this chatd",
        description="Print an n8n workflow (JSON) that speaks chatd's protocol, with this chatd's"
        " URLs filled in (server.public_url). See README, 'Connect n8n'.",
    )
    workflow.add_argument(
        "--mode",
        choices=["sync", "callback", "agent"],
        default="sync",
        help="sync: reply in the HTTP response; callback: answer 202, reply later (slow bots);"
        " agent: an AI agent whose reply streams token by token (a Chat Trigger when"
        " n8n.mode = chat_trigger)",
    )
    workflow.add_argument("--path", default="chatd", help="the n8n webhook path (default chatd)")
    check = command(
        "n8n-check",
        help="send a signed test message to n8n.webhook_url and say what came back",
        description=N8N_CHECK_DESCRIPTION,
    )
    check.add_argument(
        "--url", help="the webhook URL to check (default: n8n.webhook_url from the configuration)"
    )


def _bench(command: Command) -> None:
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
