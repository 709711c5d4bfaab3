"""`chatd` command line: serve, migrate. Exit codes: 0 ok, 1 failure, 2 bad configuration or usage."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import structlog
import trio

from chatd.app import Ready, ServeOptions, open_database_url, prepare_schema, serve
from chatd.bench.cli import add_bench_command, run_bench
from chatd.component_config import pool_config
from chatd.db.embedded import default_state_dir
from chatd.db.pool import open_pool
from chatd.errors import ChatdError, ConfigError, DatabaseUnavailable
from chatd.logs import configure_logging
from chatd.n8n.workflow import build_workflow
from chatd.ops_cli import add_ops_commands, run_ops_command
from chatd.queue_cli import add_queue_commands, run_queue_command
from chatd.settings import Settings, load_settings

log = structlog.get_logger(__name__)

DESCRIPTION = """\
chatd: the chat back end of an online shop. Shoppers' messages are stored in PostgreSQL, queued
durably and delivered to an n8n workflow; the bot's replies come back to the browser.

Configuration: --config FILE (TOML; every key is documented in config.toml), then environment
variables CHATD_<SECTION>__<KEY> (e.g. CHATD_SERVER__PORT=9000) and the guide's names
(DATABASE_URL, CHAT_WEBHOOK_SECRET, CHAT_N8N_WEBHOOK_URL, CHAT_SESSION_TIMEOUT, ...).
With no database.url, an embedded PostgreSQL runs in the state directory. With no
n8n.webhook_url, a built-in demo bot answers and GET / serves a demo shop with the chat widget.
Shops embed the widget with <script src="{chatd}/widget.js" async></script> and list their
origin in websocket.allowed_origins.

Operations: /livez, /readyz and /api/chat/health; /metrics (Prometheus; metrics.token,
metrics.listen); the admin page at /admin with admin.token; alerts to alerts.webhook_url;
periodic cleanup ([maintenance]). Under systemd (systemd/chatd.service) chatd speaks sd_notify
(READY, WATCHDOG, STATUS, STOPPING), reads secrets from $CREDENTIALS_DIRECTORY, and reloads
[admin], metrics.token, [alerts] and [maintenance] on SIGHUP (systemctl reload chatd).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatd", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        default=os.environ.get("CHATD_CONFIG") or None,
        help="TOML config file (default: $CHATD_CONFIG, else built-in defaults)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        default=None,
        help="where the embedded PostgreSQL keeps its data (default: $CHATD_STATE_DIR,"
        f" systemd's $STATE_DIRECTORY, else {default_state_dir()})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_cmd = commands.add_parser(
        "serve",
        help="run the chat server (HTTP API, WebSocket, widget, actors, database)",
        description="Run chatd until SIGTERM or SIGINT (SIGHUP reloads what can change safely)."
        " It serves the API under /api/chat, the widget at /widget.js, the admin page at"
        " /admin, /metrics, and, in demo mode (no n8n.webhook_url), a demo shop at /. With a"
        " configured database.url that is down at start, it waits for it (systemd sees no"
        " READY until then).",
    )
    serve_cmd.add_argument("--host", help="address to listen on (server.host; default 127.0.0.1)")
    serve_cmd.add_argument(
        "--port", type=int, help="port to listen on (server.port; default 8000; 0 = any free)"
    )
    serve_cmd.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply migrations on start; refuse to start if any are pending",
    )

    commands.add_parser(
        "migrate",
        help="apply pending database migrations and exit",
        description="Apply pending migrations (safe to run from several processes at once).",
    )
    add_queue_commands(commands)
    add_bench_command(commands)
    add_ops_commands(commands)

    workflow = commands.add_parser(
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "bench":  # a client of some chatd: this one's settings do not apply
        return run_bench(args)
    try:
        settings = load_settings(args.config)
        if args.command == "serve":
            settings = _with_server_overrides(settings, args.host, args.port)
    except ConfigError as exc:
        print(f"chatd: configuration error:\n{exc}", file=sys.stderr)
        return 2
    if args.command == "n8n-workflow":
        try:
            flow = build_workflow(
                mode=args.mode,
                chatd_url=settings.public_url,
                webhook_path=args.path,
                n8n_mode=settings.n8n.mode,
            )
        except ValueError as exc:
            print(f"chatd: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(flow, indent=2, ensure_ascii=False))
        return 0
    configure_logging(settings.log.level, settings.log.format)
    state_dir = args.state_dir or default_state_dir()
    try:
        if args.command == "serve":
            apply = settings.database.migrate_on_start and not args.no_migrate
            options = ServeOptions(
                state_dir,
                migrate=apply,
                reload=lambda: _with_server_overrides(
                    load_settings(args.config), args.host, args.port
                ),
            )
            trio.run(serve, settings, options, _announce)
        elif args.command == "migrate":
            trio.run(_migrate, settings, state_dir)
        elif args.command == "queue":
            return trio.run(_queue, settings, state_dir, args)
        else:
            return trio.run(_ops, settings, state_dir, args)
    except ChatdError as exc:
        log.error("chatd_failed", error=str(exc), kind=type(exc).__name__)
        if isinstance(exc, DatabaseUnavailable):
            print("chatd: is PostgreSQL running and database.url right?", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _with_server_overrides(settings: Settings, host: str | None, port: int | None) -> Settings:
    server = settings.server.model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    if port is not None and not 0 <= port <= 65535:
        raise ConfigError(f"--port: must be 0..65535 (got {port})")
    return settings.model_copy(update={"server": server})


def _announce(ready: Ready) -> None:
    print(ready.describe(), file=sys.stderr, flush=True)


async def _migrate(settings: Settings, state_dir: Path) -> None:
    async with (
        open_database_url(settings, state_dir) as (url, _kind),
        open_pool(pool_config(settings, url)) as pool,
    ):
        await prepare_schema(pool, apply=True)
    log.info("migrations_done")


async def _queue(settings: Settings, state_dir: Path, args: argparse.Namespace) -> int:
    async with (
        open_database_url(settings, state_dir, share=True) as (url, _kind),
        open_pool(pool_config(settings, url), fill=False) as pool,
    ):
        await prepare_schema(pool, apply=False)
        return await run_queue_command(args, pool)


async def _ops(settings: Settings, state_dir: Path, args: argparse.Namespace) -> int:
    async with (
        open_database_url(settings, state_dir, share=True) as (url, _kind),
        open_pool(pool_config(settings, url), fill=False) as pool,
    ):
        await prepare_schema(pool, apply=False)
        return await run_ops_command(args, pool, settings)
