"""`chatd`: parse the command line, run one command, and turn a failure into a few plain lines.

Exit codes: 0 done, 1 failed, 2 bad usage or configuration (starting again fails the same way;
systemd/chatd.service does not restart on it).
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from importlib import import_module

from chatd.cli.parser import build_parser
from chatd.errors import ChatdError, ConfigError, DatabaseMisconfigured, DatabaseUnavailable

# Each command's module, imported only when it runs: `chatd --help` loads no server stack.
RUNNERS = {
    "serve": "chatd.cli.serve",
    "migrate": "chatd.cli.serve",
    "queue": "chatd.cli.queue",
    "agent": "chatd.cli.agents",
    "cleanup": "chatd.cli.ops",
    "export": "chatd.cli.ops",
    "shopper": "chatd.cli.shopper",
    "search": "chatd.cli.shopper",
    "bench": "chatd.bench.cli",
    "n8n-workflow": "chatd.cli.n8n",
    "n8n-check": "chatd.cli.n8n",
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[..., int] = import_module(RUNNERS[args.command]).run
    try:
        return run(args)
    except KeyboardInterrupt:
        return 0
    except (ChatdError, OSError, BaseExceptionGroup) as exc:
        failure = sole_failure(exc)
        if failure is None:
            raise  # a bug: its traceback is the report
        lines, code = describe(failure)
        print("\n".join(f"chatd: {line}" for line in lines), file=sys.stderr)
        return code


def sole_failure(exc: BaseException) -> ChatdError | OSError | None:
    """The one error that explains `exc`. Trio wraps an error raised in a nursery in an
    ExceptionGroup, together with the Cancelled of its siblings; those say nothing."""
    if isinstance(exc, ChatdError):
        return exc
    if isinstance(exc, OSError):
        return exc if exc.errno == errno.EADDRINUSE else None
    if not isinstance(exc, BaseExceptionGroup):
        return None
    import trio  # already loaded: only a Trio run raises groups here

    found = [sole_failure(e) for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
    return found[0] if len(found) == 1 else None


def describe(failure: ChatdError | OSError) -> tuple[list[str], int]:
    """(what is wrong and what to do, the exit code)."""
    match failure:
        case ConfigError():
            return ["configuration error:", *str(failure).splitlines()], 2
        case DatabaseMisconfigured():
            return [str(failure), failure.hint], 2
        case DatabaseUnavailable():
            return [str(failure), "is PostgreSQL running and database.url right?"], 1
        case ChatdError():
            return str(failure).splitlines(), 1
        case _:  # EADDRINUSE: checked before the database starts, so taken since then
            return [f"{failure.strerror}: choose another port with --port (server.port)"], 2
