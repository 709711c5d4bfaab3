"""Where raw settings come from besides the defaults: the TOML file, systemd credentials and the
environment names (ours and the original guide's)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatd.errors import ConfigError


def _ms(value: str) -> float:
    return float(value) / 1000.0


# The original guide's environment names, with their units converted to ours.
GUIDE_ENV: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    "DATABASE_URL": ("database", "url", str),
    "CHAT_WEBHOOK_SECRET": ("n8n", "webhook_secret", str),
    "CHAT_N8N_WEBHOOK_URL": ("n8n", "webhook_url", str),
    "CHAT_SESSION_TIMEOUT": ("chat", "guest_session_ttl_seconds", _ms),
    "CHAT_MAX_MESSAGE_LENGTH": ("chat", "max_message_length", str),
    "CHAT_RATE_LIMIT_WINDOW": ("chat", "rate_limit_window_seconds", _ms),
    "CHAT_RATE_LIMIT_MAX": ("chat", "rate_limit_max", str),
    "CHAT_QUEUE_WORKER_CONCURRENCY": ("queue", "concurrency", str),
    "CHAT_QUEUE_RETRY_ATTEMPTS": ("queue", "max_attempts", str),
    "CHAT_QUEUE_RETRY_DELAY": ("queue", "retry_base_delay_seconds", _ms),
    "WEBSOCKET_HEARTBEAT_INTERVAL": ("websocket", "heartbeat_interval_seconds", _ms),
    "CHAT_LOG_LEVEL": ("log", "level", str.lower),
}

ENV_PREFIX = "CHATD_"
CREDENTIAL_PREFIX = "chatd_"  # systemd/chatd.service: LoadCredential=chatd:/etc/chatd/credentials


def read_credentials(directory: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """{(section, key): (value, where)} from systemd's credential files (LoadCredential=).

    A directory loaded as `LoadCredential=chatd:/etc/chatd/credentials` names its files
    `chatd_<file>`: that prefix is dropped. Files without a dot in their name are not settings
    (another program's credentials) and are left alone; a dotted name that is no setting is
    reported like an unknown key.
    """
    found: dict[tuple[str, str], tuple[str, str]] = {}
    try:
        files = sorted(p for p in directory.iterdir() if p.is_file())
    except OSError as exc:
        raise ConfigError(f"CREDENTIALS_DIRECTORY {directory}: cannot be read ({exc})") from None
    for path in files:
        section, dot, key = path.name.removeprefix(CREDENTIAL_PREFIX).partition(".")
        if not dot:
            continue
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")  # `echo` adds a newline
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"credential {path}: cannot be read ({exc})") from None
        found[(section, key)] = (value, f"credential {path.name}")
    return found


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
