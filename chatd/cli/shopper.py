"""`chatd shopper export|delete` and `chatd search reindex`: a shopper's data on request, and
the search index moved to another language.

A deletion says what it will remove and asks before it does (--yes for scripts); what was
deleted is recorded in chat_erasures (counts per table and a salted hash of the identifier,
never the content), as the admin API's deletion does.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import trio

from chatd.cli.database import command_settings, open_command_pool
from chatd.core.transcript import shopper_json, transcript_text
from chatd.db.export import transcript_pages
from chatd.db.pool import Pool
from chatd.db.search import ReindexProgress, reindex, reindex_todo
from chatd.db.shoppers import Shopper, erase_shopper, holdings
from chatd.files.disk import DiskBlobs
from chatd.settings import Settings

REINDEX_PROGRESS_EVERY = 50_000  # messages between two progress lines on stderr


def run(args: argparse.Namespace) -> int:
    settings, state_dir = command_settings(args)
    return trio.run(_run, settings, state_dir, args)


async def _run(settings: Settings, state_dir: Path, args: argparse.Namespace) -> int:
    async with open_command_pool(settings, state_dir) as pool:
        if args.command == "search":
            return await _reindex(pool, settings.search.language, everything=args.all)
        shopper = shopper_of(args)
        if shopper is None:
            return 2
        if args.shopper_command == "export":
            return await _export(pool, shopper, args.format)
        directory = settings.attachments.directory
        files = DiskBlobs(Path(directory)) if directory else None
        return await _delete(pool, shopper, files, assume_yes=args.yes)


def shopper_of(args: argparse.Namespace) -> Shopper | None:
    if args.email is not None and not args.email.strip():
        print("chatd shopper: --email is blank", file=sys.stderr)
        return None
    if args.user_id is not None and not args.user_id:
        print("chatd shopper: --user-id is blank", file=sys.stderr)
        return None
    return Shopper(user_id=args.user_id, email=args.email)


async def _export(pool: Pool, shopper: Shopper, fmt: str) -> int:
    found = [t async for page in transcript_pages(pool, shopper.export_range()) for t in page]
    if fmt == "text":
        out = "".join(transcript_text(t.session, t.messages) + "\n" for t in found)
    else:
        conversations = [(t.session, t.messages) for t in found]
        body = shopper_json(shopper.named(), conversations, datetime.now(UTC))
        out = json.dumps(body, ensure_ascii=False, indent=2) + "\n"
    stdout = trio.wrap_file(sys.stdout)
    await stdout.write(out)
    await stdout.flush()
    messages = sum(len(t.messages) for t in found)
    print(
        f"chatd shopper export: {shopper.describe()}: {len(found)} session(s),"
        f" {messages} message(s)",
        file=sys.stderr,
    )
    return 0


async def _delete(
    pool: Pool, shopper: Shopper, files: DiskBlobs | None, *, assume_yes: bool
) -> int:
    held = await holdings(pool, shopper)
    if held.sessions == 0:
        print(f"Nothing stored about {shopper.describe()}; the request is recorded.")
    elif not assume_yes:
        print(
            f"This deletes everything stored about {shopper.describe()}: {held.sessions}"
            f" conversation(s) with {held.messages} message(s), their queued deliveries to n8n"
            ", their tags, ratings and files. It cannot be undone.",
            file=sys.stderr,
        )
        print("Type yes to delete: ", end="", file=sys.stderr, flush=True)
        answer = await trio.wrap_file(sys.stdin).readline()
        if answer.strip().lower() != "yes":
            print("chatd shopper delete: not confirmed; nothing deleted", file=sys.stderr)
            return 1
    erased = await erase_shopper(pool, shopper, "cli", files)
    e = erased.erasure
    counts = ", ".join(f"{table} {n}" for table, n in sorted(e.deleted.items()) if n)
    print(f"Deleted {counts or 'nothing'}; audit record {e.id} ({e.erased_at.isoformat()}).")
    if not erased.vacuumed:
        print("chatd shopper delete: the vacuum did not finish; autovacuum will", file=sys.stderr)
    return 0


async def _reindex(pool: Pool, language: str, *, everything: bool) -> int:
    todo, total = await reindex_todo(pool, language)
    print(
        f"chatd search reindex: {todo} of {total} message(s) are not indexed with {language!r}",
        file=sys.stderr,
    )
    last = [0]

    def progress(p: ReindexProgress) -> None:
        if p.seen // REINDEX_PROGRESS_EVERY > last[0] // REINDEX_PROGRESS_EVERY:
            print(f"chatd search reindex: {p.seen} looked at, {p.moved} moved", file=sys.stderr)
        last[0] = p.seen

    done = await reindex(pool, language, everything=everything, on_progress=progress)
    print(f"{done.moved} of {done.seen} message(s) reindexed with {language!r}")
    return 0
