"""`chatd agent ...` as real subprocesses against the test database: passwords from stdin,
never echoed or logged; a disabled account cannot sign in."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

from chatd.core.staff import verify_password
from chatd.db.agents import AgentStore
from chatd.db.pool import Pool
from tests.e2e.test_serve import serve_env

SECRET = "a long and secret password 42"


async def agent_cli(
    *argv: str, stdin: bytes, database_url: str, cwd: Path, state_dir: Path
) -> tuple[int, str]:
    done = await trio.run_process(
        [sys.executable, "-m", "chatd", "agent", *argv],
        cwd=cwd,
        stdin=stdin,
        env=serve_env(state_dir, DATABASE_URL=database_url, CHATD_LOG__LEVEL="debug"),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).decode()


async def test_add_list_disable_reset(
    pool: Pool, database_url: str, repo_root: Path, state_dir: Path
) -> None:
    kw = {"database_url": database_url, "cwd": repo_root, "state_dir": state_dir}
    code, out = await agent_cli(
        "add", "Anna@Shop.example", "--name", "Anna", "--role", "admin",
        stdin=f"{SECRET}\n".encode(), **kw,
    )  # fmt: skip
    assert code == 0, out
    assert "added admin Anna@Shop.example (Anna)" in out
    assert SECRET not in out
    code, out = await agent_cli("add", "anna@shop.example", "--name", "A", stdin=b"x" * 20, **kw)
    assert code == 1
    assert "exists" in out  # emails are unique, case ignored
    code, out = await agent_cli("add", "ben@shop.example", "--name", "Ben", stdin=b"short\n", **kw)
    assert code == 1
    assert "at least 12 characters" in out
    code, out = await agent_cli("list", "--json", stdin=b"", **kw)
    assert [json.loads(line)["email"] for line in out.splitlines()] == ["Anna@Shop.example"]
    found = await AgentStore(pool).by_email("anna@shop.example")
    assert found is not None
    assert verify_password(found[1], SECRET)
    assert SECRET not in found[1]
    code, out = await agent_cli(
        "reset-password", "anna@shop.example", stdin=b"another secret 12345\n", **kw
    )
    assert code == 0, out
    found = await AgentStore(pool).by_email("anna@shop.example")
    assert found is not None
    assert verify_password(found[1], "another secret 12345")
    code, out = await agent_cli("disable", "anna@shop.example", stdin=b"", **kw)
    assert code == 0, out
    found = await AgentStore(pool).by_email("anna@shop.example")
    assert found is not None
    assert found[0].disabled
    code, out = await agent_cli("disable", "nobody@shop.example", stdin=b"", **kw)
    assert code == 1
    assert "no account" in out
