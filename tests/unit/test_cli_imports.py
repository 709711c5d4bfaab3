"""The command line starts at once: each command imports what it uses, not the server stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVER_STACK = ("hypercorn", "quart", "quart_trio", "psycopg", "httpx", "trio", "pydantic")

PROBE = """
import json, sys
from chatd.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {stack})))
"""


def loaded(*argv: str) -> set[str]:
    """The top-level packages of SERVER_STACK that `chatd ARGV` has imported when it is done."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(stack=set(SERVER_STACK)), *argv],
        capture_output=True,
        check=True,
        text=True,
        timeout=60,
    )
    return {name.split(".")[0] for name in json.loads(result.stdout.splitlines()[-1])}


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["serve", "--help"],
        ["queue", "stats", "--help"],
        ["bench", "--help"],
        ["n8n-check", "--help"],
        ["no-such-command"],
    ],
)
def test_help_and_usage_errors_import_nothing_heavy(argv: list[str]) -> None:
    assert loaded(*argv) == set()


def test_n8n_workflow_needs_the_settings_only() -> None:
    assert loaded("n8n-workflow") == {"pydantic"}


def test_bench_loads_its_client_side_only() -> None:
    # Bad arguments: `chatd bench` has parsed them and imported its runner, and stops there.
    assert loaded("bench", "throughput") <= {"trio", "httpx"}


@pytest.mark.parametrize("module", ["chatd.cli.queue", "chatd.cli.ops"])
def test_database_commands_load_no_http_server(module: str) -> None:
    """`chatd queue|cleanup|export` talk to PostgreSQL only: no hypercorn or quart."""
    probe = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, check=True, text=True, timeout=60
    )
    modules = set(json.loads(result.stdout))
    assert not modules & {"hypercorn", "quart", "quart_trio", "chatd.http.asgi", "chatd.process"}
