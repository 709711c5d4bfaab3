"""`chatd serve` and `chatd migrate`: checks first, then the process tree (chatd/process.py)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import structlog
import trio

from chatd.cli.database import command_settings
from chatd.cli.preflight import preflight
from chatd.db.pool import open_pool
from chatd.db.startup import open_database_url, pool_config, prepare_schema
from chatd.errors import ConfigError
from chatd.logs import renders_json
from chatd.process import Ready, ServeOptions, serve
from chatd.settings import Settings, load_settings

log = structlog.get_logger(__name__)


def run(args: argparse.Namespace) -> int:
    if args.command == "migrate":
        settings, state_dir = command_settings(args)
        preflight(settings, state_dir, listen=False)
        trio.run(_migrate, settings, state_dir)
        return 0
    settings, state_dir = command_settings(args)
    settings = with_server_overrides(settings, args.host, args.port)
    preflight(settings, state_dir, listen=True)
    options = ServeOptions(
        state_dir,
        migrate=settings.database.migrate_on_start and not args.no_migrate,
        reload=lambda: with_server_overrides(load_settings(args.config), args.host, args.port),
    )
    announce = _announce_json if renders_json(settings.log.format) else _announce
    trio.run(serve, settings, options, announce)
    return 0


def with_server_overrides(settings: Settings, host: str | None, port: int | None) -> Settings:
    if port is not None and not 0 <= port <= 65535:
        raise ConfigError(f"--port: must be 0..65535 (got {port})")
    server = settings.server.model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    return settings.model_copy(update={"server": server})


def _announce(ready: Ready) -> None:
    """Where to point a browser: printed whatever log.level says."""
    print(ready.describe(), file=sys.stderr, flush=True)


def _announce_json(ready: Ready) -> None:
    """The same, as one more JSON line among the logs (level aside, like a log event's)."""
    line = {
        "event": "chatd_listening",
        "message": ready.describe(),
        "urls": ready.urls,
        "level": "info",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    print(json.dumps(line), file=sys.stderr, flush=True)


async def _migrate(settings: Settings, state_dir: Path) -> None:
    async with (
        open_database_url(settings, state_dir) as (url, _kind),
        open_pool(pool_config(settings, url)) as pool,
    ):
        await prepare_schema(pool, apply=True)
    log.info("migrations_done")
