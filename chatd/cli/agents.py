"""`chatd agent ...`: staff accounts for the inbox. Passwords come from a prompt or stdin, never
from the command line (which `ps` and shell history show) and never into a log."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

import trio

from chatd.cli.database import command_settings, open_command_pool
from chatd.core.staff import Role, WeakPassword, hash_password
from chatd.db.agents import AgentStore
from chatd.errors import ChatdError
from chatd.settings import Settings


class AgentCommandError(ChatdError):
    """A refusal `chatd agent` explains in one line (exit 1)."""


def run(args: argparse.Namespace) -> int:
    settings, state_dir = command_settings(args)
    password_hash = None
    if args.agent_command in ("add", "reset-password"):
        password_hash = _hashed(read_password())  # asked before the database is opened
    return trio.run(_run, settings, state_dir, args, password_hash)


def read_password() -> str:
    """At a terminal: asked twice, not echoed. Otherwise: the first line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise AgentCommandError("the two passwords differ; nothing was changed")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _hashed(password: str) -> str:
    try:
        return hash_password(password)
    except WeakPassword as exc:
        raise AgentCommandError(f"{exc}; nothing was changed") from None


async def _run(
    settings: Settings, state_dir: Path, args: argparse.Namespace, password_hash: str | None
) -> int:
    async with open_command_pool(settings, state_dir) as pool:
        return await run_agent_command(args, AgentStore(pool), password_hash)


async def run_agent_command(
    args: argparse.Namespace, store: AgentStore, password_hash: str | None
) -> int:
    match args.agent_command:
        case "add":
            assert password_hash is not None
            name, email = args.name.strip(), args.email.strip()
            if not 1 <= len(name) <= 80:
                raise AgentCommandError("--name needs 1 to 80 characters")
            local, _, domain = email.partition("@")
            if not local or not domain or len(email) > 254 or any(c.isspace() for c in email):
                raise AgentCommandError(f"{email!r} is not an email address")
            agent = await store.add(
                name=name,
                email=args.email.strip(),
                role=Role(args.role),
                password_hash=password_hash,
            )
            print(f"added {agent.role} {agent.email} ({agent.name}), id {agent.id}")
        case "list":
            for agent in await store.list():
                if args.json:
                    row = {
                        "id": agent.id,
                        "name": agent.name,
                        "email": agent.email,
                        "role": agent.role.value,
                        "disabled": agent.disabled,
                        "createdAt": agent.created_at.isoformat(),
                    }
                    print(json.dumps(row, ensure_ascii=False))
                else:
                    state = "disabled" if agent.disabled else "active"
                    print(f"{agent.email:<32} {agent.role:<6} {state:<9} {agent.name}")
        case "disable":
            if not await store.disable(args.email):
                raise AgentCommandError(f"no account with the email {args.email!r}")
            print(f"disabled {args.email}; its browsers are signed out")
        case "reset-password":
            assert password_hash is not None
            if not await store.set_password(args.email, password_hash):
                raise AgentCommandError(f"no account with the email {args.email!r}")
            print(f"new password set for {args.email}; its browsers are signed out")
    return 0
