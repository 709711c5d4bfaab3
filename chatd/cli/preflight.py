"""What would make `chatd serve` fail after slow work (a database created, started, migrated),
checked first: each problem is a ConfigError saying what is wrong and what to do."""

from __future__ import annotations

import errno
from pathlib import Path

from chatd.db.embedded import lock_state_dir
from chatd.db.pool import PoolConfig
from chatd.errors import ConfigError, EmbeddedPostgresError
from chatd.settings import Settings


def preflight(settings: Settings, state_dir: Path, *, listen: bool) -> None:
    """Every check, cheapest first; `listen`: chatd serve, which binds ports."""
    check_database_url(settings)
    if listen:
        check_listen_addresses(settings)
    check_state_dir(settings, state_dir)


def check_database_url(settings: Settings) -> None:
    """A database.url psycopg cannot parse (the settings only look at its scheme)."""
    if settings.database.url:
        PoolConfig(settings.database.url).conninfo()


def check_listen_addresses(settings: Settings) -> None:
    """Bind each address chatd will listen on, as hypercorn will, and let go at once.

    A port taken between this check and hypercorn's bind still fails, later and louder; a
    socket handed over by systemd (socket activation) is not checked: systemd holds it.
    """
    # Here, not at the top: the commands that only check the database URL need no HTTP stack.
    from chatd.component_config import hypercorn_config, metrics_hypercorn_config

    configs = [("choose another port with --port (server.port)", hypercorn_config(settings))]
    if settings.metrics.listen:
        configs.append(("choose another in metrics.listen", metrics_hypercorn_config(settings)))
    for what_to_do, config in configs:
        where = ", ".join(config.bind)
        if any(bind.startswith(("unix:", "fd://")) for bind in config.bind):
            continue  # fd://: systemd holds the socket (socket activation)
        try:
            sockets = config.create_sockets()
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            if exc.errno == errno.EADDRINUSE:
                reason += " (another chatd, or another program?)"
            raise ConfigError(f"cannot listen on {where}: {reason}; {what_to_do}") from None
        for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
            sock.close()


def check_state_dir(settings: Settings, state_dir: Path) -> None:
    """The embedded PostgreSQL's state directory: can be created, and no other chatd uses it."""
    if settings.database.url:
        return
    try:
        lock_state_dir(state_dir).close()  # the real lock is taken again, for good, at start
    except EmbeddedPostgresError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(
            f"state directory {state_dir}: {exc.strerror or exc}; give chatd one it can write"
            " with --state-dir"
        ) from None
