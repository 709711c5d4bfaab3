"""load_settings: layer the sources, validate once, and name the key and its origin on error."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chatd.core.urls import without_secrets
from chatd.errors import ConfigError
from chatd.settings.model import Settings
from chatd.settings.sources import ENV_PREFIX, GUIDE_ENV, read_credentials, read_toml

# Never echoed in errors (a URL may carry a password: https://user:password@n8n.example/...).
_SECRET_KEYS = frozenset(
    {
        "secret",
        "webhook_secret",
        "previous_secrets",
        "token",
        "url",  # the database's: a DSN may carry its password anywhere
        "basic_auth_password",
        "auth_header_value",
        "url_secret",
        "password",
    }
)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from an optional TOML file and the environment; ConfigError if unusable."""
    env = os.environ if environ is None else environ
    raw: dict[str, dict[str, Any]] = {}
    origin: dict[tuple[str, str], str] = {}
    if path is not None:
        for section, keys in read_toml(path).items():
            if not isinstance(keys, dict):
                raise ConfigError(f"{path}: [{section}] must be a table of keys")
            for key, value in keys.items():
                raw.setdefault(section, {})[key] = value
                origin[(section, key)] = f"{path}: {section}.{key}"
    if credentials := env.get("CREDENTIALS_DIRECTORY"):
        for (section, key), (value, where) in read_credentials(Path(credentials)).items():
            raw.setdefault(section, {})[key] = value
            origin[(section, key)] = where
    for name, (section, key, convert) in GUIDE_ENV.items():
        if name in env:
            try:
                raw.setdefault(section, {})[key] = convert(env[name])
            except ValueError:
                raise ConfigError(f"environment {name}: not a number: {env[name]!r}") from None
            origin[(section, key)] = f"environment {name}"
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        raw.setdefault(section, {})[key] = value
        origin[(section, key)] = f"environment {name}"
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, path)) from None


def _describe(
    exc: ValidationError, origin: Mapping[tuple[str, str], str], path: Path | None
) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        section, key = [*loc, "", ""][:2]
        where = origin.get((section, key)) or next(
            (src for (s, _), src in origin.items() if s == section and not key),
            f"{path or 'settings'}: {'.'.join(loc)}",
        )
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown {'key' if key else 'section'} (see config.toml)")
        else:
            message = err["msg"].removeprefix("Value error, ")
            if not key:  # a rule over the section: its input is every key, secrets included
                lines.append(f"{where}: {message}")
                continue
            value = err.get("input")
            if key in _SECRET_KEYS:
                shown = "hidden"
            elif key == "webhook_url" and isinstance(value, str):  # the place, not the password
                shown = repr(without_secrets(value))
            else:
                shown = repr(value)
            lines.append(f"{where}: {message} (got {shown})")
    return "\n".join(lines)
