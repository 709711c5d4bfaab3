"""The inbox's tools in the database (sql/queries/notes.sql): internal notes, canned responses,
and the audit trails of exported sessions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, LiteralString

import psycopg

from chatd.core.notes import CannedResponse, Note
from chatd.core.staff import Agent
from chatd.core.tokens import new_id
from chatd.db.pool import Pool
from chatd.db.queries import query
from chatd.db.takeover import refusal
from chatd.errors import Conflict, NotFound

NOTES_SHOWN = 500  # notes shown with a conversation (the oldest first)


class NoteStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def add(self, session_id: str, agent: Agent, content: str) -> Note:
        """A note in an open conversation; NotFound, Conflict (ended) or Gone (expired)."""
        params = {
            "id": new_id(),
            "session_id": session_id,
            "agent_id": agent.id,
            "agent_name": agent.name,
            "content": content,
        }
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("note_add"), params)).fetchone()
            if row is not None:
                return Note(**row)
            now = await (
                await conn.execute(query("conversation_now"), {"session_id": session_id})
            ).fetchone()
        if now is not None and now["live"] and now["conversation_state"] != "closed":
            raise AssertionError("note_add matched no session, yet it is open")
        raise refusal(now, None)

    async def check_holding(self, session_id: str, agent: Agent) -> None:
        """Nothing if `agent` holds the live conversation; else why not (as a reply is refused)."""
        async with self._pool.connection() as conn:
            now = await (
                await conn.execute(query("conversation_now"), {"session_id": session_id})
            ).fetchone()
        if now is not None and now["live"] and now["agent_id"] == agent.id:
            return
        raise refusal(now, None)

    async def by_ids(self, ids: Sequence[str]) -> list[Note]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(query("notes_by_ids"), {"ids": list(ids)})).fetchall()
        return [Note(**row) for row in rows]

    async def of_session(self, session_id: str, limit: int = NOTES_SHOWN) -> list[Note]:
        params = {"session_id": session_id, "limit": limit}
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(query("session_notes"), params)).fetchall()
        return [Note(**row) for row in rows]


class CannedStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def list(self) -> list[CannedResponse]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(query("canned_list"))).fetchall()
        return [CannedResponse(**row) for row in rows]

    async def add(self, shortcut: str, title: str, content: str) -> CannedResponse:
        params = {"id": new_id(), "shortcut": shortcut, "title": title, "content": content}
        return await self._save(query("canned_add"), params)

    async def update(
        self, canned_id: str, shortcut: str, title: str, content: str
    ) -> CannedResponse:
        params = {"id": canned_id, "shortcut": shortcut, "title": title, "content": content}
        return await self._save(query("canned_update"), params)

    async def delete(self, canned_id: str) -> None:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("canned_delete"), {"id": canned_id})).fetchone()
        if row is None:
            raise _not_found(canned_id)

    async def _save(self, sql: LiteralString, params: Mapping[str, Any]) -> CannedResponse:
        async with self._pool.connection() as conn:
            try:
                row = await (await conn.execute(sql, params)).fetchone()
            except psycopg.errors.UniqueViolation:
                raise Conflict(
                    f"the shortcut /{params['shortcut']} is taken by another canned response",
                    code="shortcut_taken",
                    field="shortcut",
                ) from None
        if row is None:
            raise _not_found(str(params["id"]))
        return CannedResponse(**row)


def _not_found(canned_id: str) -> NotFound:
    return NotFound(f"no canned response {canned_id!r}", code="canned_response_not_found")
