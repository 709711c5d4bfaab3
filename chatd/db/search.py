"""Full-text search over messages (sql/queries/search.sql): one page of matches with their
conversation, the language new messages are indexed with, and reindexing stored ones.

A page is two statements on one connection: the matches (newest first, or ranked), then what is
shown of the page's rows only (the marked-up message, who the conversation is with, its tags).
Both run unprepared, so each search is planned with its own values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import structlog
import trio

from chatd.core.rating_filter import RatingFilter
from chatd.core.search import START, STOP
from chatd.db.pool import Connection, Pool
from chatd.db.queries import query
from chatd.errors import BadRequest, ConfigError, DatabaseUnavailable

log = structlog.get_logger(__name__)

Sort = Literal["newest", "relevance"]
HEADLINE_OPTIONS = f'HighlightAll=true, StartSel="{START}", StopSel="{STOP}"'
REINDEX_BATCH = 1000
# Up to this many matches, newest-first takes them from the search index and sorts them; more,
# it walks the time index until a page is full (sql/queries/search.sql, search_matches_upto).
FEW_MATCHES = 1000


@dataclass(frozen=True)
class SearchFilters:
    """What a match must also satisfy; None (False) leaves a filter out."""

    since: datetime | None = None  # the message's created_at, inclusive
    until: datetime | None = None  # exclusive
    sender: str | None = None  # "user", "bot" or "system"
    tag: str | None = None  # its conversation has this tag (normal form)
    failed: bool = False  # its conversation has a message whose delivery failed
    rating: RatingFilter | None = None  # its conversation is rated (that value) or not
    user_id: str | None = None  # its conversation is this shopper's, by user id ...
    email: str | None = None  # ... or by guest email (ignoring case)
    handed_off: bool | None = None  # its conversation was handed to a person (or never was)
    state: str | None = None  # its conversation is now "bot", "waiting", "human" or "closed"
    agent_id: str | None = None  # an agent took part in its conversation, or holds it


@dataclass(frozen=True)
class SearchHit:
    message_id: str
    session_id: str
    seq: int
    sender_type: str
    created_at: datetime
    rank: float
    headline: str  # the whole message, matches between START and STOP
    user_id: str | None
    guest_email: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True)
class SearchPage:
    parsed: str  # the query as PostgreSQL read it, e.g. 'trail' & 'shoe'
    hits: list[SearchHit]
    has_more: bool  # another page follows


class SearchStore:
    def __init__(self, pool: Pool, language: str) -> None:
        self._pool = pool
        self._language = language

    async def search(
        self, q: str, filters: SearchFilters, *, sort: Sort, offset: int, limit: int
    ) -> SearchPage:
        """Matches of `q` (websearch syntax); BadRequest "empty_query" when it has no word to
        look for (only stop words of the language, or punctuation)."""
        base = {"config": self._language, "q": q}
        async with self._pool.connection() as conn:
            cur = await conn.execute(query("search_parse"), base, prepare=False)
            parsed = await cur.fetchone()
            assert parsed is not None  # a SELECT of expressions answers one row
            if not parsed["nodes"]:
                raise BadRequest(
                    f"q has no words to search for in the {self._language!r} language (only"
                    " punctuation, or words too common to be indexed)",
                    code="empty_query",
                    field="q",
                )
            session_ids = await self._shopper_sessions(conn, filters)
            if session_ids == []:
                return SearchPage(parsed["parsed"], [], False)
            params = {
                **base,
                **_filter_params(filters),
                "session_ids": session_ids,
                "limit": limit + 1,  # one more: is there another page?
                "offset": offset,
            }
            params["plan"] = "relevance"
            if sort == "newest":
                params["plan"] = await _newest_plan(conn, params)
            cur = await conn.execute(query("search_page"), params, prepare=False)
            rows = await cur.fetchall()
            rows, more = rows[:limit], len(rows) > limit
            details = await self._details(conn, q, [row["id"] for row in rows])
        hits = [_hit(row, details[row["id"]]) for row in rows if row["id"] in details]
        return SearchPage(parsed["parsed"], hits, more)

    async def _shopper_sessions(self, conn: Connection, filters: SearchFilters) -> list[str] | None:
        if filters.user_id is None and filters.email is None:
            return None
        params = {"user_id": filters.user_id, "email": filters.email}
        cur = await conn.execute(query("shopper_sessions"), params, prepare=False)
        return [row["id"] for row in await cur.fetchall()]

    async def _details(self, conn: Connection, q: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        params = {
            "config": self._language,
            "q": q,
            "ids": ids,
            "marks": START + STOP,
            "options": HEADLINE_OPTIONS,
        }
        cur = await conn.execute(query("search_details"), params, prepare=False)
        return {row["id"]: row for row in await cur.fetchall()}


async def _newest_plan(conn: Connection, params: dict[str, Any]) -> str:
    """search_page's plan for newest first: "few" (sort the matches) or "newest" (walk)."""
    cur = await conn.execute(
        query("search_matches_upto"), {**params, "cap": FEW_MATCHES + 1}, prepare=False
    )
    row = await cur.fetchone()
    assert row is not None  # count(*) always answers
    return "few" if row["n"] <= FEW_MATCHES else "newest"


def _filter_params(filters: SearchFilters) -> dict[str, Any]:
    return {
        "since": filters.since,
        "until": filters.until,
        "sender": filters.sender,
        "tag": filters.tag,
        "failed": filters.failed,
        **rating_params(filters.rating),
        "handed_off": filters.handed_off,
        "state": filters.state,
        "agent_id": filters.agent_id,
    }


def rating_params(rating: RatingFilter | None) -> dict[str, Any]:
    """The rating filter's two query parameters (sql/queries/search.sql, maintenance.sql)."""
    if rating is None:
        return {"rated": None, "rating": None}
    return {"rated": rating.rated, "rating": rating.rating}


def _hit(row: dict[str, Any], details: dict[str, Any]) -> SearchHit:
    return SearchHit(
        row["id"],
        row["session_id"],
        row["seq"],
        row["sender_type"],
        row["created_at"],
        float(row["rank"]),
        details["headline"],
        details["user_id"],
        details["guest_email"],
        tuple(details["tags"]),
    )


async def apply_search_language(pool: Pool, language: str) -> None:
    """Make `language` the one new messages are indexed with; ConfigError naming the key when
    PostgreSQL has no such text search configuration. Says so when it changed: the messages
    already stored keep theirs until `chatd search reindex`."""
    async with pool.connection() as conn:
        await check_search_language(conn, language)
        row = await (
            await conn.execute(query("search_set_config"), {"config": language})
        ).fetchone()
    if row is not None:
        log.warning(
            "search_language_changed",
            previous=row["previous"],
            language=language,
            hint="stored messages keep the previous one until `chatd search reindex`",
        )


async def keep_search_language(
    pool: Pool,
    language: str,
    *,
    first_try: float,
    retry_every: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """apply_search_language, retried while the database is away: chatd serves meanwhile
    (/livez, and /readyz says why it is not ready). Started once the first try has ended, or
    after `first_try` seconds; a ConfigError before that stops chatd's start."""
    started = False
    with trio.move_on_after(first_try):
        started = await _try_language(pool, language)
    task_status.started()
    while not started:
        await trio.sleep(retry_every)
        started = await _try_language(pool, language)


async def _try_language(pool: Pool, language: str) -> bool:
    try:
        await apply_search_language(pool, language)
    except DatabaseUnavailable as exc:
        log.warning("search_language_unavailable", error=str(exc))
        return False
    return True


async def check_search_language(conn: Connection, language: str) -> None:
    cur = await conn.execute(query("search_config_exists"), {"config": language})
    row = await cur.fetchone()
    assert row is not None  # a SELECT of EXISTS answers one row
    if not row["present"]:
        raise ConfigError(
            f"search.language: PostgreSQL has no text search configuration {language!r}"
            f" (it has: {', '.join(row['available'])})"
        )


@dataclass(frozen=True)
class ReindexProgress:
    seen: int  # messages looked at so far
    moved: int  # of them, reindexed


async def reindex(
    pool: Pool,
    language: str,
    *,
    everything: bool = False,
    batch: int = REINDEX_BATCH,
    on_progress: Callable[[ReindexProgress], None] | None = None,
) -> ReindexProgress:
    """Index every stored message with `language` (also made the one new messages get), in
    batches of `batch` by id, each its own short transaction. With `everything`, messages
    already indexed with it are indexed again (after its dictionaries changed)."""
    await apply_search_language(pool, language)
    after, seen, moved = "", 0, 0
    while True:
        params = {"after": after, "limit": batch, "config": language, "all": everything}
        async with pool.connection() as conn:
            cur = await conn.execute(query("search_reindex_batch"), params)
            row = await cur.fetchone()
        assert row is not None  # scalar subqueries: always one row
        if not row["seen"]:
            return ReindexProgress(seen, moved)
        after, seen, moved = row["last_id"], seen + row["seen"], moved + row["moved"]
        if on_progress is not None:
            on_progress(ReindexProgress(seen, moved))


async def reindex_todo(pool: Pool, language: str) -> tuple[int, int]:
    """(messages not indexed with `language`, all messages)."""
    async with pool.connection() as conn:
        cur = await conn.execute(query("search_reindex_todo"), {"config": language})
        row = await cur.fetchone()
    assert row is not None  # count(*) always answers
    return int(row["todo"]), int(row["total"])
