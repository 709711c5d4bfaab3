"""`chatd cleanup` and `chatd export`: delete what retention says should go; dump transcripts."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from chatd.cli.database import command_settings, open_command_pool
from chatd.core.tags import RULE, normalise_tag
from chatd.core.transcript import transcript_json, transcript_text
from chatd.db.agents import AgentStore
from chatd.db.cleanup import LABELS, CleanupProgress, CleanupSummary, FileDeleter, run_cleanup
from chatd.db.export import EARLIEST, LATEST, ExportRange, Transcript, transcript_pages
from chatd.db.leader import leadership
from chatd.db.pool import Pool
from chatd.files.disk import DiskBlobs
from chatd.ops.maintenance import LOCK
from chatd.settings import MaintenanceSettings, Settings

PROGRESS_SECONDS = 2.0  # cleanup: at most one progress line on stderr this often
EXPORT_PROGRESS_SESSIONS = 1000  # export: one progress line on stderr per this many sessions
EXPORT_PAGE_SIZE = 200
LOCK_POLL_SECONDS = 1.0


def run(args: argparse.Namespace) -> int:
    settings, state_dir = command_settings(args)
    return trio.run(_run, settings, state_dir, args)


async def _run(settings: Settings, state_dir: Path, args: argparse.Namespace) -> int:
    async with open_command_pool(settings, state_dir) as pool:
        return await run_ops_command(args, pool, settings)


async def run_ops_command(args: argparse.Namespace, pool: Pool, settings: Settings) -> int:
    if args.command == "cleanup":
        directory = settings.attachments.directory
        files = DiskBlobs(Path(directory)) if directory else None
        return await _cleanup(args, pool, settings.maintenance, files)
    return await _export(args, pool, settings.search.language)


# cleanup


async def _cleanup(
    args: argparse.Namespace,
    pool: Pool,
    config: MaintenanceSettings,
    files: FileDeleter | None = None,
) -> int:
    if args.dry_run:  # deletes nothing, so it needs no lock
        summary: CleanupSummary | None = await run_cleanup(pool, config, dry_run=True)
    else:
        summary = await cleanup_as_leader(
            pool, config, wait=args.wait, on_progress=_Progress(), files=files
        )
    if summary is None:
        print(
            f"chatd cleanup: another chatd is still cleaning up after {args.wait:g}s;"
            " nothing done (try again later)",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(summary.as_dict()) if args.json else summary.describe())
    return 0


async def cleanup_as_leader(
    pool: Pool,
    config: MaintenanceSettings,
    *,
    wait: float,
    on_progress: Callable[[CleanupProgress], None] | None = None,
    files: FileDeleter | None = None,
) -> CleanupSummary | None:
    """One cleanup under the cleanup lock, waiting up to `wait` seconds for it; None: no lock."""
    deadline = trio.current_time() + wait
    told = False
    while True:
        async with leadership(pool, LOCK) as leader:
            if leader is not None:
                return await run_cleanup(pool, config, on_progress=on_progress, files=files)
        if trio.current_time() + LOCK_POLL_SECONDS > deadline:
            return None
        if not told:
            print(
                f"chatd cleanup: another chatd is cleaning up; waiting up to {wait:g}s for it",
                file=sys.stderr,
            )
            told = True
        await trio.sleep(LOCK_POLL_SECONDS)


class _Progress:
    """At most one line on stderr every PROGRESS_SECONDS: what a long cleanup did so far."""

    def __init__(self) -> None:
        self._next = trio.current_time() + PROGRESS_SECONDS

    def __call__(self, progress: CleanupProgress) -> None:
        now = trio.current_time()
        if now < self._next:
            return
        self._next = now + PROGRESS_SECONDS
        r = progress.removed
        print(
            f"chatd cleanup: {LABELS[progress.category]}: {progress.batches} batch(es) so far,"
            f" {r.sessions} sessions, {r.messages} messages, {r.jobs} jobs",
            file=sys.stderr,
        )


# export


async def _export(args: argparse.Namespace, pool: Pool, language: str) -> int:
    narrowed = args.tag or args.rating or args.query or args.user_id or args.email
    narrowed = narrowed or args.handoff or args.state or args.agent
    if args.since is None and not args.session and not narrowed:
        print(
            "chatd export: give --since WHEN (or --session, --tag, --rating, --query, --user-id,"
            " --email, --handoff, --state, --agent)",
            file=sys.stderr,
        )
        return 2
    agent = None
    if args.agent is not None and (agent := await AgentStore(pool).named(args.agent)) is None:
        print(
            f"chatd export: --agent: no agent has the id or email {args.agent!r}", file=sys.stderr
        )
        return 2
    tag = None
    if args.tag is not None and (tag := normalise_tag(args.tag)) is None:
        print(f"chatd export: --tag: {RULE}", file=sys.stderr)
        return 2
    spec = ExportRange(
        args.since or EARLIEST,
        args.until or LATEST,
        args.session,
        user_id=args.user_id,
        email=args.email.strip().lower() if args.email else None,
        tag=tag,
        rating=args.rating,
        query=args.query.strip() or None if args.query else None,
        language=language,
        handed_off=None if args.handoff is None else args.handoff == "yes",
        state=args.state,
        agent_id=None if agent is None else agent.id,
    )
    if spec.since >= spec.until:
        print("chatd export: --since must be before --until", file=sys.stderr)
        return 2
    render = _jsonl if args.format == "jsonl" else _text
    sessions = messages = 0
    async with _open_output(args.output) as write:
        async for page in transcript_pages(pool, spec, page_size=EXPORT_PAGE_SIZE):
            await write("".join(render(t) for t in page))
            before, sessions = sessions, sessions + len(page)
            messages += sum(len(t.messages) for t in page)
            if sessions // EXPORT_PROGRESS_SESSIONS > before // EXPORT_PROGRESS_SESSIONS:
                print(f"chatd export: {sessions} sessions so far", file=sys.stderr)
    where = args.output or "stdout"
    print(f"chatd export: {sessions} session(s), {messages} message(s) to {where}", file=sys.stderr)
    return 0


def _jsonl(t: Transcript) -> str:
    body = transcript_json(t.session, t.messages, audit=t.audit)
    # The export reads no ratings: no "rating": null that would read as "not rated".
    body.pop("rating", None)
    return json.dumps(body, ensure_ascii=False) + "\n"


def _text(t: Transcript) -> str:
    return transcript_text(t.session, t.messages, audit=t.audit) + "\n"


@asynccontextmanager
async def _open_output(path: Path | None) -> AsyncIterator[Callable[[str], Awaitable[Any]]]:
    """An async write function to stdout, or to a temporary file renamed to `path` only when
    the block completes (a failed export leaves no partial file behind)."""
    if path is None:
        stdout = trio.wrap_file(sys.stdout)
        yield stdout.write
        await stdout.flush()
        return
    tmp = trio.Path(path.with_name(f".{path.name}.{os.getpid()}.tmp"))
    try:
        async with await trio.open_file(tmp, "w", encoding="utf-8") as out:
            yield out.write
            await out.flush()
            await trio.to_thread.run_sync(os.fsync, out.fileno())
        await tmp.replace(path)
    finally:
        with trio.CancelScope(shield=True):
            await tmp.unlink(missing_ok=True)
