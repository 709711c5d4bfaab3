"""What every command's grammar shares: the global options, accepted before or after it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

STATE_DIR_HELP = (
    "where the embedded PostgreSQL keeps its data (default: $CHATD_STATE_DIR, systemd's"
    " $STATE_DIRECTORY, /var/lib/chatd as root, else ~/.local/state/chatd, or"
    " $XDG_STATE_HOME/chatd if that is set)"
)


def anywhere() -> argparse.ArgumentParser:
    """The global options again, for after a command (`chatd serve --state-dir X`). SUPPRESS:
    a value given before the command stands unless one is given after it."""
    parent = argparse.ArgumentParser(add_help=False)
    global_options(parent, default_config=argparse.SUPPRESS, state_dir=argparse.SUPPRESS)
    return parent


def global_options(
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
