"""`chatd cleanup` and `chatd export` as real subprocesses against the test database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import trio

from chatd.db.leader import leadership
from chatd.db.pool import Pool
from tests.e2e.test_serve import serve_env


async def chatd(
    *argv: str, database_url: str, cwd: Path, state_dir: Path
) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "chatd", *argv],
        cwd=cwd,
        env=serve_env(state_dir, DATABASE_URL=database_url, CHATD_LOG__LEVEL="warning"),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )


async def seed(pool: Pool, sid: str, *, age: str, expired: bool = False, messages: int = 1) -> None:
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO chat_sessions (id, token_hash, created_at, updated_at, expires_at,"
            " last_seq) VALUES (%(id)s, '\\x00', now() - %(age)s::interval,"
            " now() - %(age)s::interval, now() + CASE WHEN %(expired)s THEN interval '-1 hour'"
            " ELSE interval '1 hour' END, %(n)s)",
            {"id": sid, "age": age, "expired": expired, "n": messages},
        )
        for seq in range(1, messages + 1):
            await conn.execute(
                "INSERT INTO chat_messages (id, session_id, sender_type, content, seq)"
                " VALUES (%s, %s, 'user', %s, %s)",
                (f"{sid}-m{seq}", sid, f"message {seq} of {sid}", seq),
            )


async def session_ids(pool: Pool) -> set[str]:
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT id FROM chat_sessions")).fetchall()
    return {row["id"] for row in rows}


async def test_cleanup_dry_run_then_for_real(
    pool: Pool, database_url: str, repo_root: Path, tmp_path: Path
) -> None:
    await seed(pool, "expired", age="2 hours", expired=True, messages=2)
    await seed(pool, "fresh", age="1 hour")
    async with pool.connection() as conn:  # a file the expired session's shopper sent
        await conn.execute(
            "INSERT INTO chat_attachments (id, session_id, message_id, state, storage,"
            " chunk_bytes) VALUES ('file-1', 'expired', 'expired-m1', 'ready', 'postgres', 1024)"
        )
    run = {"database_url": database_url, "cwd": repo_root, "state_dir": tmp_path}

    dry = await chatd("cleanup", "--dry-run", "--json", **run)
    assert dry.returncode == 0, dry.stderr.decode()
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True
    counted = {"sessions": 1, "messages": 2, "jobs": 0, "attachments": 1}
    assert report["expired_sessions"] == counted
    assert report["total"] == counted
    assert await session_ids(pool) == {"expired", "fresh"}

    real = await chatd("cleanup", **run)
    assert real.returncode == 0, real.stderr.decode()
    table = real.stdout.decode()
    assert "expired sessions" in table
    assert "kept (undelivered)" in table
    assert await session_ids(pool) == {"fresh"}
    async with pool.connection() as conn:
        left = await (await conn.execute("SELECT count(*) AS n FROM chat_attachments")).fetchone()
    assert left is not None
    assert left["n"] == 0  # the file went with its session


async def test_cleanup_gives_up_when_another_chatd_holds_the_lock(
    pool: Pool, database_url: str, repo_root: Path, tmp_path: Path
) -> None:
    await seed(pool, "expired", age="2 hours", expired=True)
    async with leadership(pool, "cleanup") as held:
        assert held is not None
        result = await chatd(
            "cleanup", "--wait", "0", database_url=database_url, cwd=repo_root, state_dir=tmp_path
        )
    assert result.returncode == 1
    assert b"another chatd is still cleaning up" in result.stderr
    assert await session_ids(pool) == {"expired"}


async def test_export_since_to_a_file(
    pool: Pool, database_url: str, repo_root: Path, tmp_path: Path
) -> None:
    await seed(pool, "old", age="3 days")
    await seed(pool, "recent", age="2 hours", messages=2)
    await seed(pool, "newest", age="1 minute", messages=0)
    out = tmp_path / "export" / "chats.jsonl"
    out.parent.mkdir()
    result = await chatd(
        "export",
        "--since",
        "1d",
        "--output",
        str(out),
        database_url=database_url,
        cwd=repo_root,
        state_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""
    assert b"2 session(s), 2 message(s)" in result.stderr
    assert [p.name for p in out.parent.iterdir()] == ["chats.jsonl"]  # no temporary file left
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [doc["session"]["id"] for doc in lines] == ["recent", "newest"]
    assert set(lines[0]) == {"session", "messages", "audit"}
    assert lines[0]["audit"] == []  # nobody took it over (test_export has a trail)
    assert [m["content"] for m in lines[0]["messages"]] == [
        "message 1 of recent",
        "message 2 of recent",
    ]
    assert lines[1]["messages"] == []


async def test_export_one_session_as_text_to_stdout(
    pool: Pool, database_url: str, repo_root: Path, tmp_path: Path
) -> None:
    await seed(pool, "wanted", age="3 days", messages=2)
    await seed(pool, "other", age="1 hour")
    result = await chatd(
        "export",
        "--session",
        "wanted",
        "--format",
        "text",
        database_url=database_url,
        cwd=repo_root,
        state_dir=tmp_path,
    )
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode()
    assert text.startswith("Chat wanted with guest, started ")
    assert "Shopper: message 2 of wanted" in text
    assert "other" not in text


async def test_export_refuses_bad_ranges_with_exit_2(
    database_url: str, repo_root: Path, tmp_path: Path
) -> None:
    run = {"database_url": database_url, "cwd": repo_root, "state_dir": tmp_path}
    bad = await chatd("export", "--since", "last tuesday", **run)
    assert bad.returncode == 2
    assert b"argument --since: not a date, time or duration: 'last tuesday'" in bad.stderr
    missing = await chatd("export", **run)
    assert missing.returncode == 2
    assert b"give --since WHEN" in missing.stderr
    backwards = await chatd("export", "--since", "2026-11-02", "--until", "2026-11-01", **run)
    assert backwards.returncode == 2
    assert b"--since must be before --until" in backwards.stderr
    nobody = await chatd("export", "--agent", "nobody@shop.example", **run)
    assert nobody.returncode == 2
    assert b"--agent: no agent has the id or email 'nobody@shop.example'" in nobody.stderr
    state = await chatd("export", "--state", "open", **run)
    assert state.returncode == 2
    assert b"argument --state: invalid choice: 'open'" in state.stderr
    never = await chatd("export", "--handoff", "no", **run)  # no conversations: none exported
    assert never.returncode == 0, never.stderr
    assert b"0 session(s)" in never.stderr


async def test_help_describes_cleanup_and_export(repo_root: Path) -> None:
    for command, words in {
        "cleanup": ("--dry-run", "--json", "--wait", "kept (undelivered)", "batch_size"),
        "export": ("--since", "--until", "--session", "--output", "7d", "2026-11-01T10:00:00Z"),
    }.items():
        result = await trio.run_process(
            [sys.executable, "-m", "chatd", command, "--help"], cwd=repo_root, capture_stdout=True
        )
        text = result.stdout.decode()
        for word in words:
            assert word in text, (command, word)
