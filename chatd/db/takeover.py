"""Conversations as the staff see them: state changes, agents' replies, the inbox lists and the
audit trail (sql/queries/inbox.sql). Changes are called by the session actor only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from chatd.core.conversation import AuditEntry, ConversationChange, ConversationState
from chatd.core.file_urls import FileLinks
from chatd.core.messages import Message
from chatd.core.staff import Agent
from chatd.core.tokens import new_id
from chatd.db.messages import check_files, message_from_row
from chatd.db.pool import Pool
from chatd.db.queries import query
from chatd.errors import Conflict, Gone, NotFound


@dataclass(frozen=True)
class InboxRow:
    id: str
    user_id: str | None
    guest_email: str | None
    metadata: dict[str, Any] | None
    user_context: dict[str, Any]
    state: ConversationState
    agent_id: str | None
    agent_name: str | None
    handoff_reason: str | None
    state_changed_at: datetime
    created_at: datetime
    updated_at: datetime
    last_seq: int
    last_sender: str | None
    last_content: str | None
    last_at: datetime | None
    last_read_seq: int = 0  # how far the agent who asked has read it
    unread: int = 0  # the shopper's messages after that (at most 100)


class TakeoverStore:
    def __init__(self, pool: Pool, links: FileLinks | None = None) -> None:
        self._pool = pool
        self._links = links  # signs the URLs of an agent's files

    async def change(self, session_id: str, change: ConversationChange) -> Message:
        """Apply `change` with its system message; Conflict (who holds it), Gone or NotFound."""
        detail = dict(change.detail)
        if change.reason is not None:
            detail["reason"] = change.reason
        params = {
            "session_id": session_id,
            "message_id": new_id(),
            "from_states": [state.value for state in change.from_states],
            "to_state": change.to_state.value,
            "to_agent": change.to_agent.id if change.to_agent else None,
            "holder": change.holder,
            "reason": change.reason,
            "content": change.content,
            "metadata": Jsonb(change.metadata()),
            "actor": change.actor,
            "action": change.action,
            "detail": Jsonb(detail) if detail else None,
        }
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("conversation_change"), params)).fetchone()
            if row is not None:
                return message_from_row(row)
            now = await (
                await conn.execute(query("conversation_now"), {"session_id": session_id})
            ).fetchone()
        raise refusal(now, change)

    async def agent_message(
        self, session_id: str, agent: Agent, content: str, attachments: tuple[str, ...] = ()
    ) -> Message:
        params = {
            "session_id": session_id,
            "message_id": new_id(),
            "agent_id": agent.id,
            "agent_name": agent.name,
            "content": content,
            "attachment_ids": list(attachments),
        }
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("agent_message"), params)).fetchone()
            if row is not None:
                return message_from_row(row, self._links)
            now = await (
                await conn.execute(query("conversation_now"), {"session_id": session_id})
            ).fetchone()
            files = None
            if attachments:
                files = await (await conn.execute(query("agent_files_refusal"), params)).fetchone()
        holding = now is not None and now["live"] and now["agent_id"] == agent.id
        if holding and files is not None:
            check_files(files, attachments)
        raise refusal(now, None)

    async def inbox(
        self,
        states: tuple[ConversationState, ...],
        *,
        agent_id: str | None,
        limit: int,
        reader: str | None = None,  # the agent whose unread counts are given
    ) -> list[InboxRow]:
        params = {
            "states": [s.value for s in states],
            "agent_id": agent_id,
            "limit": limit,
            "reader": reader,
        }
        async with self._pool.connection() as conn:
            rows = await (await conn.execute(query("inbox_list"), params)).fetchall()
        return [inbox_row(row) for row in rows]

    async def conversation(self, session_id: str, reader: str | None = None) -> InboxRow | None:
        params = {"session_id": session_id, "reader": reader}
        async with self._pool.connection() as conn:
            row = await (await conn.execute(query("inbox_conversation"), params)).fetchone()
        return None if row is None else inbox_row(row)

    async def audit(self, session_id: str) -> list[AuditEntry]:
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(query("conversation_audit"), {"session_id": session_id})
            ).fetchall()
        return [AuditEntry(**row) for row in rows]


def refusal(now: Mapping[str, Any] | None, change: ConversationChange | None) -> Exception:
    """Why a change (None: an agent's reply) did nothing, from the conversation as it is."""
    if now is None:
        return NotFound("no such conversation", code="conversation_not_found")
    if now["conversation_state"] == ConversationState.CLOSED:
        return Conflict("this conversation has ended", code="conversation_closed")
    if not now["live"]:
        return Gone("this conversation's session has expired", code="session_expired")
    state = ConversationState(now["conversation_state"])
    if state is ConversationState.HUMAN:
        return Conflict(
            f"{now['agent_name']} holds this conversation",
            code="conversation_held",
        )
    if change is None:
        return Conflict("take the conversation over before replying", code="not_holding")
    return Conflict(
        f"the conversation is {state.value}; {change.action.replace('_', ' ')} needs it"
        f" {' or '.join(s.value for s in change.from_states)}",
        code="conversation_state",
    )


def inbox_row(row: Mapping[str, Any]) -> InboxRow:
    return InboxRow(
        row["id"],
        row["user_id"],
        row["guest_email"],
        row["metadata"],
        row["user_context"],
        ConversationState(row["conversation_state"]),
        row["agent_id"],
        row["agent_name"],
        row["handoff_reason"],
        row["state_changed_at"],
        row["created_at"],
        row["updated_at"],
        row["last_seq"],
        row["last_sender"],
        row["last_content"],
        row["last_at"],
        row["last_read_seq"],
        row["unread"],
    )
