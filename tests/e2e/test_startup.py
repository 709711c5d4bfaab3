"""`chatd` as a subprocess, started wrong: each mistake gets a line or two and an exit code, and
is found before anything slow (an embedded PostgreSQL created, a database migrated) starts."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import trio
from psycopg.conninfo import make_conninfo

from tests.e2e.test_serve import LISTENING, serve_env, start_serve
from tests.pg import with_dbname


async def chatd(repo_root: Path, *argv: str, **env: str) -> tuple[int, list[str]]:
    """Run `chatd ARGV` to the end: (exit code, stderr's lines)."""
    result = await trio.run_process(
        [sys.executable, "-m", "chatd", *argv],
        cwd=repo_root,
        env=serve_env(Path("/nonexistent/chatd-state"), **env),
        stdin=subprocess.DEVNULL,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return result.returncode, result.stderr.decode().splitlines()


async def test_port_in_use_is_refused_before_the_database_is_created(
    state_dir: Path, repo_root: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, lines = await chatd(
            repo_root, "serve", "--port", str(port), "--state-dir", str(state_dir)
        )
    assert code == 2
    assert lines == [
        "chatd: configuration error:",
        f"chatd: cannot listen on 127.0.0.1:{port}: address already in use (another chatd, or"
        " another program?); choose another port with --port (server.port)",
    ]
    assert not (state_dir / "pg").exists()  # no initdb, no PostgreSQL started


async def test_a_database_url_that_is_no_url_is_a_configuration_error(repo_root: Path) -> None:
    for command in ("serve", "migrate"):
        code, lines = await chatd(repo_root, command, DATABASE_URL="notaurl")
        assert code == 2
        assert lines == [
            "chatd: configuration error:",
            "chatd: environment DATABASE_URL: not a PostgreSQL URL; write it as"
            " postgresql://user:password@host:5432/dbname (got hidden)",
        ]
    # A URL with the right scheme that psycopg cannot parse: its text (and password) not echoed.
    code, lines = await chatd(repo_root, "serve", DATABASE_URL="postgresql://u:secret@[::1")
    assert code == 2
    assert lines == [
        "chatd: configuration error:",
        "chatd: database.url (DATABASE_URL) is not a PostgreSQL URL; write it as"
        " postgresql://user:password@host:5432/dbname",
    ]


async def test_a_database_that_refuses_chatd_for_good_is_not_waited_for(
    admin_url: str, repo_root: Path
) -> None:
    cases = [
        (
            with_dbname(admin_url, "no_such_db"),
            'PostgreSQL refuses chatd: database "no_such_db" does not exist',
            "create the database (createdb), or fix database.url",
        ),
        (
            make_conninfo(admin_url, user="no_such_role"),
            'PostgreSQL refuses chatd: role "no_such_role" does not exist',
            "create the role (createuser), or fix the user in database.url",
        ),
    ]
    for url, what, hint in cases:
        with trio.fail_after(30):  # at once: no retry loop
            code, lines = await chatd(repo_root, "serve", "--port", "0", DATABASE_URL=url)
        assert code == 2
        assert lines[-2:] == [
            f"chatd: {what}",
            f"chatd: {hint} (DATABASE_URL); waiting will not help",
        ]
        assert not any("Traceback" in line for line in lines)


async def test_a_database_that_is_not_up_yet_is_waited_for(repo_root: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: connections are refused
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "chatd", "serve"],
            cwd=repo_root,
            env=serve_env(
                Path("/nonexistent"),
                DATABASE_URL=f"postgresql://chatd@127.0.0.1:{port}/chatd",
                CHATD_LOG__FORMAT="json",
            ),
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            assert process.stderr is not None
            seen = b""
            with trio.fail_after(60):
                async for chunk in process.stderr:
                    seen += chunk
                    if seen.count(b'"database_waiting"') >= 2:
                        break
            assert process.returncode is None  # still waiting, not exited
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(30):
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()


async def test_global_options_go_after_the_command_too(tmp_path: Path, repo_root: Path) -> None:
    config = tmp_path / "chatd.toml"
    config.write_text('[server]\npublic_url = "https://after.example"\n')
    result = await trio.run_process(
        [sys.executable, "-m", "chatd", "n8n-workflow", "--config", str(config)],
        cwd=repo_root,
        env=serve_env(tmp_path),
        capture_stdout=True,
    )
    assert "https://after.example" in result.stdout.decode()
    # Before and after: the one after the command wins; a state directory after `serve` is used.
    code, lines = await chatd(
        repo_root, "--config", "/nonexistent.toml", "migrate", "--config", str(config),
        "--state-dir", "/proc/chatd-cannot-be-here",
    )  # fmt: skip
    assert code == 2
    assert lines[0] == "chatd: configuration error:"
    assert lines[1].startswith("chatd: state directory /proc/chatd-cannot-be-here: ")
    assert lines[1].endswith("give chatd one it can write with --state-dir")


async def test_help_tells_one_truth_about_the_state_directory(repo_root: Path) -> None:
    for argv in (["--help"], ["serve", "--help"]):
        result = await trio.run_process(
            [sys.executable, "-m", "chatd", *argv], cwd=repo_root, capture_stdout=True
        )
        text = " ".join(result.stdout.decode().split())
        assert "/var/lib/chatd as root, else ~/.local/state/chatd" in text


async def test_json_logs_are_json_on_every_line(database_url: str, repo_root: Path) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "chatd", "serve"],
        cwd=repo_root,
        env=serve_env(Path("/nonexistent"), DATABASE_URL=database_url, CHATD_LOG__FORMAT="json"),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    output = b""
    try:
        assert process.stderr is not None
        with trio.fail_after(60):
            async for chunk in process.stderr:
                output += chunk
                if LISTENING.search(output.decode(errors="replace")):
                    break
            process.send_signal(signal.SIGTERM)
            async for chunk in process.stderr:
                output += chunk
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
    events = [json.loads(line) for line in output.decode().splitlines()]  # each line is JSON
    names = [e["event"] for e in events]
    assert "chatd_ready" in names
    assert "chatd_stopped" in names
    assert "chatd_listening" in names  # the announcement, as JSON too
    running_on = [e for e in events if e.get("logger") == "hypercorn.error"]
    assert running_on
    assert running_on[0]["event"].startswith("Running on http://")
    assert "chatd_ready_notified" not in names  # no systemd here: nothing was notified


async def test_same_state_directory_twice_says_so_in_one_line(
    state_dir: Path, repo_root: Path
) -> None:
    first = await start_serve([sys.executable, "-m", "chatd", "serve"], state_dir, repo_root)
    try:
        assert first.stderr is not None
        seen = b""
        with trio.fail_after(90):
            async for chunk in first.stderr:
                seen += chunk
                if LISTENING.search(seen.decode(errors="replace")):
                    break
        code, lines = await chatd(repo_root, "serve", "--state-dir", str(state_dir))
        assert code == 2
        assert lines == [
            "chatd: configuration error:",
            f"chatd: state directory {state_dir} is in use by another chatd (pid {first.pid});"
            " stop it, or give this one its own --state-dir",
        ]
        first.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            assert await first.wait() == 0
    finally:
        if first.returncode is None:
            first.kill()
