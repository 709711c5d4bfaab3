"""`chatd shopper export|delete`, `chatd export`'s filters and `chatd search reindex` as real
subprocesses against the test database: a shopper's data on request, checked table by table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import trio

from chatd.db.pool import Pool
from tests.e2e.test_serve import serve_env

ATTACHMENT = {"type": "file", "url": "https://shop.example/invoices/77.pdf", "title": "Invoice 77"}


async def chatd(
    *argv: str, database_url: str, cwd: Path, state_dir: Path, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "chatd", *argv],
        cwd=cwd,
        env=serve_env(state_dir, DATABASE_URL=database_url, CHATD_LOG__LEVEL="warning"),
        stdin=stdin,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )


async def seed(
    pool: Pool, sid: str, *, user_id: str | None = None, email: str | None = None, word: str
) -> None:
    """A conversation: the shopper's message (queued to n8n), a bot reply with an attachment,
    a tag; `word` is in both messages so the search index holds it."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO chat_sessions (id, token_hash, user_id, guest_email, expires_at,"
            " last_seq) VALUES (%s, '\\x00', %s, %s, now() + interval '1 hour', 2)",
            (sid, user_id, email),
        )
        await conn.execute(
            "INSERT INTO chat_messages (id, session_id, sender_type, content, seq) VALUES"
            " (%s, %s, 'user', %s, 1)",
            (f"{sid}-1", sid, f"Where is my {word} order?"),
        )
        await conn.execute(
            "INSERT INTO chat_messages (id, session_id, sender_type, content, seq, metadata)"
            " VALUES (%s, %s, 'bot', %s, 2, %s)",
            (
                f"{sid}-2",
                sid,
                f"Your {word} order ships today.",
                json.dumps({"attachments": [ATTACHMENT]}),
            ),
        )
        await conn.execute(
            "INSERT INTO chat_webhook_queue (id, message_id, webhook_url, payload, session_id,"
            " seq) VALUES (%s, %s, 'http://n8n.invalid/hook', '{}', %s, 1)",
            (f"{sid}-job", f"{sid}-1", sid),
        )
        await conn.execute(
            "INSERT INTO chat_tags (session_id, tag, source) VALUES (%s, 'orders', 'staff')",
            (sid,),
        )


async def rows_of(pool: Pool, session_ids: list[str]) -> dict[str, int]:
    """Rows hanging on these sessions in every table with a session_id (and the sessions)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'session_id'"
            " AND table_schema = current_schema() ORDER BY 1"
        )
        tables = [r["table_name"] for r in await cur.fetchall()]
        found = {}
        for table in tables:
            cur = await conn.execute(
                f"SELECT count(*) AS n FROM {table} WHERE session_id = ANY(%s)",
                (session_ids,),
            )
            row = await cur.fetchone()
            assert row is not None
            found[table] = row["n"]
        cur = await conn.execute(
            "SELECT count(*) AS n FROM chat_sessions WHERE id = ANY(%s)", (session_ids,)
        )
        row = await cur.fetchone()
        assert row is not None
        found["chat_sessions"] = row["n"]
    return found


async def searchable(pool: Pool, word: str) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM chat_messages WHERE search @@ plainto_tsquery('simple', %s)",
            (word,),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def test_a_shoppers_data_exported_then_deleted_table_by_table(
    pool: Pool, database_url: str, repo_root: Path, tmp_path: Path
) -> None:
    await seed(pool, "ann-1", email="Ann@Shop.example", word="kayak")
    await seed(pool, "ann-2", email="ann@shop.example", word="kayak")
    await seed(pool, "bob-1", user_id="u-bob", word="tent")
    run: dict[str, Any] = {"database_url": database_url, "cwd": repo_root, "state_dir": tmp_path}

    exported = await chatd("shopper", "export", "--email", " ANN@shop.example ", **run)
    assert exported.returncode == 0, exported.stderr.decode()
    doc = json.loads(exported.stdout)
    assert doc["shopper"] == {"email": "ann@shop.example"}
    assert [s["session"]["id"] for s in doc["sessions"]] == ["ann-1", "ann-2"]
    assert [m["content"] for m in doc["sessions"][0]["messages"]] == [
        "Where is my kayak order?",
        "Your kayak order ships today.",
    ]
    assert doc["sessions"][0]["messages"][1]["metadata"]["attachments"] == [ATTACHMENT]
    assert b"2 session(s), 4 message(s)" in exported.stderr

    text = await chatd("shopper", "export", "--user-id", "u-bob", "--format", "text", **run)
    assert text.returncode == 0, text.stderr.decode()
    lines = text.stdout.decode().splitlines()
    assert lines[0].startswith("Chat bob-1 with u-bob")
    assert "Tags: orders" in lines
    assert "  attachment: https://shop.example/invoices/77.pdf (Invoice 77)" in lines

    ann = ["ann-1", "ann-2"]
    before = await rows_of(pool, ann)
    assert before["chat_messages"] == 4
    assert before["chat_webhook_queue"] == 2
    refused = await chatd("shopper", "delete", "--email", "ann@shop.example", stdin=b"no\n", **run)
    assert refused.returncode == 1
    assert b"2 conversation(s) with 4 message(s)" in refused.stderr
    assert b"nothing deleted" in refused.stderr
    assert await rows_of(pool, ann) == before
    eof = await chatd("shopper", "delete", "--email", "ann@shop.example", **run)
    assert eof.returncode == 1  # no answer at all: not a yes
    assert await rows_of(pool, ann) == before

    bob_before = await rows_of(pool, ["bob-1"])
    deleted = await chatd("shopper", "delete", "--email", "ann@shop.example", stdin=b"yes\n", **run)
    assert deleted.returncode == 0, deleted.stderr.decode()
    assert "chat_messages 4" in deleted.stdout.decode()
    assert all(n == 0 for n in (await rows_of(pool, ann)).values()), await rows_of(pool, ann)
    assert await searchable(pool, "kayak") == 0
    assert await rows_of(pool, ["bob-1"]) == bob_before
    assert await searchable(pool, "tent") == 2
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT * FROM chat_erasures")).fetchall()
    assert len(rows) == 1
    audit = rows[0]
    assert (audit["requested_by"], audit["subject"]) == ("cli", "email")
    assert audit["deleted"]["chat_sessions"] == 2
    assert audit["deleted"]["chat_messages"] == 4
    assert audit["deleted"]["chat_webhook_queue"] == 2
    assert audit["deleted"]["chat_tags"] == 2
    assert "ann" not in json.dumps(audit, default=str).lower()  # no identifier, no content

    scripted = await chatd("shopper", "delete", "--user-id", "u-bob", "--yes", **run)
    assert scripted.returncode == 0, scripted.stderr.decode()
    assert all(n == 0 for n in (await rows_of(pool, ["bob-1"])).values())
    nothing = await chatd("shopper", "delete", "--user-id", "u-bob", "--yes", **run)
    assert nothing.returncode == 0
    assert "Nothing stored about user id 'u-bob'" in nothing.stdout.decode()


async def test_shopper_commands_refuse_bad_usage(
    pool: Pool, database_url: str, repo_root: Path, tmp_path: Path
) -> None:
    await seed(pool, "ann-1", email="ann@shop.example", word="kayak")
    run: dict[str, Any] = {"database_url": database_url, "cwd": repo_root, "state_dir": tmp_path}
    for argv in (
        ("shopper", "delete", "--yes"),  # nobody named
        ("shopper", "delete", "--email", "a@b", "--user-id", "u", "--yes"),
        ("shopper", "export", "--email", "a@b", "--format", "csv"),
    ):
        result = await chatd(*argv, **run)
        assert result.returncode == 2, argv
        assert b"usage: chatd shopper" in result.stderr
    blank = await chatd("shopper", "delete", "--email", "  ", "--yes", **run)
    assert blank.returncode == 2
    assert b"--email is blank" in blank.stderr
    assert (await rows_of(pool, ["ann-1"]))["chat_messages"] == 2


async def test_export_by_tag_query_and_shopper(
    pool: Pool, database_url: str, repo_root: Path, tmp_path: Path
) -> None:
    await seed(pool, "ann-1", email="ann@shop.example", word="kayak")
    await seed(pool, "bob-1", user_id="u-bob", word="tent")
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO chat_tags (session_id, tag, source) VALUES ('bob-1', 'refund', 'staff')"
        )
    run: dict[str, Any] = {"database_url": database_url, "cwd": repo_root, "state_dir": tmp_path}

    async def ids(*argv: str) -> list[str]:
        result = await chatd("export", *argv, **run)
        assert result.returncode == 0, result.stderr.decode()
        return [json.loads(line)["session"]["id"] for line in result.stdout.splitlines()]

    assert await ids("--tag", "Refund") == ["bob-1"]
    assert await ids("--tag", "orders") == ["ann-1", "bob-1"]
    assert await ids("--query", "kayak") == ["ann-1"]
    assert await ids("--query", "order -kayak") == ["bob-1"]
    assert await ids("--email", "ANN@shop.example") == ["ann-1"]
    assert await ids("--user-id", "u-bob", "--tag", "orders") == ["bob-1"]
    assert await ids("--since", "1d", "--tag", "refund", "--query", "kayak") == []
    bad = await chatd("export", "--tag", "no way!", **run)
    assert bad.returncode == 2
    assert b"--tag: a tag is" in bad.stderr


async def test_search_reindex_moves_messages_to_the_configured_language(
    pool: Pool, database_url: str, repo_root: Path, tmp_path: Path
) -> None:
    await seed(pool, "ann-1", email="ann@shop.example", word="Schuhe")
    result = await trio.run_process(
        [sys.executable, "-m", "chatd", "search", "reindex"],
        cwd=repo_root,
        env=serve_env(
            tmp_path,
            DATABASE_URL=database_url,
            CHATD_LOG__LEVEL="error",
            CHATD_SEARCH__LANGUAGE="german",
        ),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b"2 of 2 message(s) are not indexed with 'german'" in result.stderr
    assert result.stdout == b"2 of 2 message(s) reindexed with 'german'\n"
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM chat_messages WHERE search @@ to_tsquery('german', 'Schuh')"
        )
        assert await cur.fetchone() == {"n": 2}
