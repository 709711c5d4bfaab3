"""The migration runner against real, empty databases: apply once, refuse drift, race safely."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from chatd.db.migrate import discover, migrate, pending
from chatd.db.pool import Connection, PoolConfig, open_pool
from chatd.errors import MigrationError
from tests.pg import DatabaseFactory

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAT_TABLES = ("chat_sessions", "chat_messages", "chat_webhook_queue")


@pytest.fixture
def empty_database_url(databases: DatabaseFactory) -> Iterator[str]:
    name = databases.create(from_template=False)
    yield databases.url(name)
    databases.drop(name)


@pytest.fixture
async def conn(empty_database_url: str) -> AsyncIterator[Connection]:
    async with (
        open_pool(PoolConfig(empty_database_url, min_size=1, max_size=1)) as pool,
        pool.connection() as conn,
    ):
        yield conn


async def rows(conn: Connection, sql: Any, params: Any = None) -> list[dict[str, Any]]:
    return await (await conn.execute(sql, params)).fetchall()


async def existing_tables(conn: Connection) -> list[str]:
    found = await rows(
        conn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    return [row["tablename"] for row in found]


async def advisory_locks(conn: Connection) -> int:
    found = await rows(conn, "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'")
    return int(found[0]["n"])


async def test_fresh_database_gets_every_migration_once(conn: Connection) -> None:
    files = discover()
    assert await existing_tables(conn) == []
    assert await pending(conn) == files

    applied = await migrate(conn)
    assert applied == files
    recorded = await rows(conn, "SELECT version, name, checksum FROM chatd_migrations ORDER BY 1")
    assert recorded == [
        {"version": m.version, "name": m.name, "checksum": m.checksum} for m in files
    ]
    assert set(CHAT_TABLES) <= set(await existing_tables(conn))

    assert await migrate(conn) == []
    assert await pending(conn) == []
    assert len(await rows(conn, "SELECT * FROM chatd_migrations")) == len(files)
    assert await advisory_locks(conn) == 0  # released after each run


async def test_edited_applied_migration_is_refused(conn: Connection) -> None:
    await migrate(conn)
    first = discover()[0]
    await conn.execute(
        "UPDATE chatd_migrations SET checksum = 'x' WHERE version = %s", [first.version]
    )
    with pytest.raises(MigrationError, match=first.filename):
        await pending(conn)
    with pytest.raises(MigrationError, match=first.filename):
        await migrate(conn)
    assert await advisory_locks(conn) == 0  # the failed run released its lock


async def test_migration_unknown_to_this_chatd_is_refused(conn: Connection) -> None:
    await migrate(conn)
    await conn.execute(
        "INSERT INTO chatd_migrations (version, name, checksum) VALUES (9999, 'from_the_future', 'c')"
    )
    with pytest.raises(MigrationError, match="9999_from_the_future"):
        await pending(conn)
    with pytest.raises(MigrationError, match="newer chatd"):
        await migrate(conn)
    assert await advisory_locks(conn) == 0


def chatd_env(database_url: str, state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATD_", "CHAT_"))}
    return {
        **env,
        "DATABASE_URL": database_url,
        "CHATD_STATE_DIR": str(state_dir),
        "CHATD_LOG__FORMAT": "json",
        **extra,
    }


def json_events(output: bytes) -> list[dict[str, Any]]:
    events = []
    for line in output.decode(errors="replace").splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


async def test_two_processes_migrating_at_once_apply_each_file_once(
    empty_database_url: str, conn: Connection, tmp_path: Path
) -> None:
    env = chatd_env(empty_database_url, tmp_path)
    results: list[subprocess.CompletedProcess[bytes]] = []

    async def run_migrate() -> None:
        results.append(
            await trio.run_process(
                [sys.executable, "-m", "chatd", "migrate"],
                cwd=REPO_ROOT,
                env=env,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        )

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_migrate)
            nursery.start_soon(run_migrate)

    for result in results:
        assert result.returncode == 0, result.stderr.decode(errors="replace")
    files = discover()
    applied = [
        event["file"]
        for result in results
        for event in json_events(result.stderr + result.stdout)
        if event.get("event") == "migration_applied"
    ]
    assert sorted(applied) == [m.filename for m in files]  # each file by exactly one process
    recorded = await rows(conn, "SELECT version FROM chatd_migrations ORDER BY version")
    assert [row["version"] for row in recorded] == [m.version for m in files]
    assert set(CHAT_TABLES) <= set(await existing_tables(conn))


async def test_serve_no_migrate_refuses_a_database_behind(
    empty_database_url: str, conn: Connection, tmp_path: Path
) -> None:
    with trio.fail_after(60):
        result = await trio.run_process(
            [sys.executable, "-m", "chatd", "serve", "--no-migrate"],
            cwd=REPO_ROOT,
            env=chatd_env(empty_database_url, tmp_path, CHATD_SERVER__PORT="0"),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 1, output
    assert "chatd migrate" in output
    assert "chatd is listening" not in output
    assert await existing_tables(conn) == []  # nothing was applied
