"""The chat_agents aggregate: staff accounts and their browser sessions (sql/queries/agents.sql)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from chatd.core.staff import Agent, Role
from chatd.core.tokens import new_id
from chatd.db.pool import Pool
from chatd.db.queries import query
from chatd.errors import Conflict


class AgentStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def add(self, *, name: str, email: str, role: Role, password_hash: str) -> Agent:
        """A new account; Conflict if the email (ignoring case) has one."""
        params = {
            "id": new_id(),
            "name": name,
            "email": email,
            "role": role.value,
            "password_hash": password_hash,
        }
        async with self._pool.connection() as conn:
            try:
                row = await (await conn.execute(query("agent_add"), params)).fetchone()
            except psycopg.errors.UniqueViolation:
                raise Conflict(
                    f"an account with the email {email!r} exists", code="email_taken"
                ) from None
        assert row is not None
        return agent_from_row(row)

    async def list(self) -> list[Agent]:
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(query("agent_list"))).fetchall()
        return [agent_from_row(row) for row in rows]

    async def by_email(self, email: str) -> tuple[Agent, str] | None:
        """The account and its password hash."""
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("agent_by_email"), {"email": email})).fetchone()
        return None if row is None else (agent_from_row(row), row["password_hash"])

    async def by_id(self, agent_id: str) -> Agent | None:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("agent_by_id"), {"id": agent_id})).fetchone()
        return None if row is None else agent_from_row(row)

    async def named(self, name: str) -> Agent | None:
        """The account with this email (ignoring case; a name with an @) or this id."""
        if "@" in name:
            account = await self.by_email(name)
            return None if account is None else account[0]
        return await self.by_id(name)

    async def disable(self, email: str) -> bool:
        """Disabled, and signed out everywhere at once; False if there is no such account."""
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(query("agent_disable"), {"email": email})).fetchall()
        return bool(rows)

    async def set_password(self, email: str, password_hash: str) -> bool:
        params = {"email": email, "password_hash": password_hash}
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(query("agent_set_password"), params)).fetchall()
        return bool(rows)

    async def open_session(self, token_hash: bytes, agent_id: str) -> None:
        params = {"token_hash": token_hash, "agent_id": agent_id}
        async with self._pool.connection() as conn:
            await conn.execute(query("agent_session_create"), params)

    async def session_agent(self, token_hash: bytes, idle_seconds: float) -> Agent | None:
        """The agent a browser session belongs to while it is good (and it counts as used)."""
        params = {"token_hash": token_hash, "idle_seconds": idle_seconds}
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("agent_session_touch"), params)).fetchone()
        return None if row is None else agent_from_row(row)

    async def close_session(self, token_hash: bytes) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(query("agent_session_delete"), {"token_hash": token_hash})

    async def sweep_sessions(self, idle_seconds: float) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute(query("agent_sessions_sweep"), {"idle_seconds": idle_seconds})
            return cur.rowcount


def agent_from_row(row: Mapping[str, Any]) -> Agent:
    return Agent(
        row["id"], row["name"], row["email"], Role(row["role"]), row["disabled"], row["created_at"]
    )
