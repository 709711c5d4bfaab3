"""Bulk export: sessions active in a time range with their messages and audit trails, page by
page, oldest first, optionally only those with a tag, a rating, of one shopper, with a message
matching a search, handed to a person (or not), in a conversation state, or an agent's.

Keyset pagination by (created_at, id): each page is one short query for the sessions and one for
their messages, so memory holds one page whatever the range.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from chatd.core.conversation import AuditEntry
from chatd.core.messages import Message
from chatd.core.rating_filter import RatingFilter
from chatd.core.transcript import SessionRecord
from chatd.db.bridge import translate
from chatd.db.messages import message_from_row
from chatd.db.pool import Pool
from chatd.db.queries import query
from chatd.db.search import rating_params
from chatd.db.sessions import session_record_from_row

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ExportRange:
    """Sessions whose lifetime (created_at to updated_at) overlaps [since, until)."""

    since: datetime = EARLIEST
    until: datetime = LATEST
    session_ids: Sequence[str] | None = None  # only these sessions (None: all)
    user_id: str | None = None  # only this shopper's sessions (by user id ...
    email: str | None = None  # ... or by guest email, ignoring case)
    tag: str | None = None  # only sessions with this tag (normalised: chatd.core.tags)
    rating: RatingFilter | None = None  # only sessions rated (that value), or not rated
    query: str | None = None  # only sessions with a message matching it (websearch syntax)
    language: str = "simple"  # the text search configuration `query` is read with
    handed_off: bool | None = None  # only sessions handed to a person (True) or never (False)
    state: str | None = None  # only sessions now in this conversation state (bot, waiting, ...)
    agent_id: str | None = None  # only sessions this agent took part in, or holds


@dataclass(frozen=True)
class Transcript:
    session: SessionRecord
    messages: list[Message]  # oldest first
    audit: list[AuditEntry] = field(default_factory=list)  # who took, replied, ... oldest first


async def transcript_pages(
    pool: Pool, spec: ExportRange, *, page_size: int = 200
) -> AsyncIterator[list[Transcript]]:
    """Pages of transcripts in (created_at, id) order. No connection is held between pages."""
    after: tuple[datetime, str] = (EARLIEST, "")
    while True:
        try:
            page = await _page(pool, spec, after, page_size)
        except psycopg.Error as exc:
            raise translate(exc) from exc
        if page:
            yield page
        if len(page) < page_size:
            return
        last = page[-1].session
        after = (last.created_at, last.id)


async def _page(
    pool: Pool, spec: ExportRange, after: tuple[datetime, str], limit: int
) -> list[Transcript]:
    params = {
        "since": spec.since,
        "until": spec.until,
        "session_ids": list(spec.session_ids) if spec.session_ids is not None else None,
        "user_id": spec.user_id,
        "email": spec.email,
        "tag": spec.tag,
        **rating_params(spec.rating),
        "q": spec.query,
        "config": spec.language,
        "handed_off": spec.handed_off,
        "state": spec.state,
        "agent_id": spec.agent_id,
        "after_created_at": after[0],
        "after_id": after[1],
        "limit": limit,
    }
    async with pool.connection() as conn:
        # Unprepared: planned with this page's values, the filters left out fold away.
        cur = await conn.execute(query("export_sessions"), params, prepare=False)
        sessions = [session_record_from_row(row) for row in await cur.fetchall()]
        if not sessions:
            return []
        ids = [s.id for s in sessions]
        cur = await conn.execute(query("export_messages"), {"session_ids": ids})
        messages = [message_from_row(row) for row in await cur.fetchall()]
        cur = await conn.execute(query("audit_of_sessions"), {"session_ids": ids})
        audit_rows = await cur.fetchall()
    by_session: dict[str, list[Message]] = {sid: [] for sid in ids}
    for message in messages:
        by_session[message.session_id].append(message)
    audit: dict[str, list[AuditEntry]] = {sid: [] for sid in ids}
    for row in audit_rows:
        audit[row.pop("session_id")].append(AuditEntry(**row))
    return [Transcript(s, by_session[s.id], audit[s.id]) for s in sessions]
