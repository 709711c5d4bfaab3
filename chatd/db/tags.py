"""Conversation tags set by staff (sql/queries/tags.sql); n8n's arrive with its replies."""

from __future__ import annotations

from dataclasses import dataclass

from chatd.core.tags import MAX_TAGS_PER_SESSION
from chatd.db.pool import Pool
from chatd.db.queries import query
from chatd.errors import Conflict, NotFound


@dataclass(frozen=True)
class TagCount:
    tag: str
    sessions: int  # conversations carrying it


class TagStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def add(self, session_id: str, tag: str) -> list[str]:
        """The conversation's tags with `tag` (normal form) among them; NotFound for no such
        session, Conflict when it already holds the most tags allowed."""
        params = {"session_id": session_id, "tag": tag, "max_tags": MAX_TAGS_PER_SESSION}
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("tag_add"), params)).fetchone()
        assert row is not None  # EXISTS and ARRAY: always one row
        if not row["found"]:
            raise _no_session(session_id)
        if not (row["added"] or row["present"]):
            raise Conflict(
                f"a conversation holds at most {MAX_TAGS_PER_SESSION} tags: remove one first",
                code="too_many_tags",
            )
        return list(row["tags"])

    async def remove(self, session_id: str, tag: str) -> list[str]:
        """The conversation's tags without `tag`; NotFound when it had no such session or tag."""
        params = {"session_id": session_id, "tag": tag}
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("tag_remove"), params)).fetchone()
        assert row is not None  # EXISTS and ARRAY: always one row
        if not row["found"]:
            raise _no_session(session_id)
        if not row["removed"]:
            raise NotFound(f"the conversation has no tag {tag!r}", code="tag_not_found")
        return list(row["tags"])

    async def counts(self, limit: int) -> list[TagCount]:
        """Every tag and how many conversations carry it, most used first."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(query("tag_counts"), {"limit": limit})
            return [TagCount(row["tag"], row["sessions"]) for row in await cur.fetchall()]


def _no_session(session_id: str) -> NotFound:
    return NotFound(f"no session {session_id!r}", code="session_not_found")
