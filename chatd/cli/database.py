"""What every command that works on the database shares: settings, logging, the state directory,
and a pool on the configured PostgreSQL or the state directory's embedded one."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from chatd.cli.preflight import check_database_url
from chatd.db.embedded import default_state_dir
from chatd.db.pool import Pool, open_pool
from chatd.db.startup import open_database_url, pool_config, prepare_schema
from chatd.logs import configure_logging
from chatd.settings import Settings, load_settings


def command_settings(args: argparse.Namespace) -> tuple[Settings, Path]:
    """(settings, state directory) for a command; ConfigError if they cannot be used."""
    settings = load_settings(args.config)
    check_database_url(settings)
    configure_logging(settings.log.level, settings.log.format)
    return settings, args.state_dir or default_state_dir()


@asynccontextmanager
async def open_command_pool(settings: Settings, state_dir: Path) -> AsyncIterator[Pool]:
    """A pool for a one-shot command, on a schema that is up to date (MigrationError if not).
    An embedded PostgreSQL a serving chatd runs in the state directory is shared."""
    async with (
        open_database_url(settings, state_dir, share=True) as (url, _kind),
        open_pool(pool_config(settings, url), fill=False) as pool,
    ):
        await prepare_schema(pool, apply=False)
        yield pool
