"""The staff inbox's API under /api/inbox, for signed-in agents (cookie + CSRF, staff_auth.py):
the conversation lists, one conversation with its history and audit trail, take over, hand
back, transfer, close, reply; and the agents' WebSocket, which carries every session's events
so a new chat or a handoff appears without a reload. Changes go through the session's actor."""

from __future__ import annotations

from typing import Any

import structlog
from quart import Blueprint, request

from chatd.core import conversation as conv
from chatd.core.conversation import OPEN_STATES, ConversationState
from chatd.core.ids import parse_id
from chatd.core.inbox_wire import (
    AgentReplied,
    AgentReplyRequest,
    AuditOut,
    ConversationChanged,
    ConversationDetail,
    ConversationOut,
    Conversations,
    InboxQuery,
    TransferRequest,
)
from chatd.core.query import parse_query
from chatd.core.responses import wire
from chatd.core.staff import Agent
from chatd.core.wire import check_attachments, check_content, iso
from chatd.db.takeover import InboxRow
from chatd.errors import BadRequest, NotFound
from chatd.http.body import json_body
from chatd.http.openapi import Doc, documented
from chatd.http.services import Services
from chatd.http.staff_auth import request_agent, staff_blueprint

log = structlog.get_logger(__name__)

HISTORY = 500  # messages shown when a conversation is opened (the newest)
VIEWS: dict[str, tuple[ConversationState, ...]] = {
    "waiting": (ConversationState.WAITING,),
    "mine": (ConversationState.HUMAN,),
    "open": OPEN_STATES,
    "closed": (ConversationState.CLOSED,),
}


def inbox_routes(services: Services) -> Blueprint:
    bp = staff_blueprint("inbox", services, url_prefix="/api/inbox")

    async def agent() -> Agent:
        return await request_agent(services)

    @bp.get("/conversations")
    @documented(
        Doc(
            "One of the inbox's lists, newest activity first",
            "inbox",
            Conversations,
            query=InboxQuery,
            auth="staff",
        )
    )
    async def conversations() -> dict[str, Any]:
        me = await agent()
        args = parse_query(InboxQuery, request.args)
        holder = me.id if args.view == "mine" else None
        rows = await services.takeover.inbox(
            VIEWS[args.view], agent_id=holder, limit=args.limit, reader=me.id
        )
        return wire(Conversations(conversations=[conversation_out(r) for r in rows]))

    @bp.get("/conversations/<session_id>")
    @documented(
        Doc(
            "A conversation: the shopper's context, its history, who did what",
            "inbox",
            ConversationDetail,
            auth="staff",
        )
    )
    async def conversation(session_id: str) -> dict[str, Any]:
        me = await agent()
        session_id = parse_id(session_id, "sessionId")
        row = await found(session_id, me.id)
        messages = await services.messages.recent(session_id, limit=HISTORY)
        audit = await services.takeover.audit(session_id)
        return wire(
            ConversationDetail(
                conversation=conversation_out(row),
                messages=[m.to_out() for m in messages],
                audit=[
                    AuditOut(
                        action=a.action,
                        agentId=a.agent_id,
                        agentName=a.agent_name,
                        detail=a.detail,
                        at=iso(a.created_at),
                    )
                    for a in audit
                ],
            )
        )

    async def found(session_id: str, reader: str | None = None) -> InboxRow:
        row = await services.takeover.conversation(session_id, reader)
        if row is None:
            raise NotFound(f"no conversation {session_id!r}", code="conversation_not_found")
        return row

    async def changed(session_id: str, change: conv.ConversationChange) -> dict[str, Any]:
        message = await services.actors.change_conversation(session_id, change)
        log.info("inbox_conversation_changed", session_id=session_id, action=change.action)
        row = await found(session_id)
        return wire(
            ConversationChanged(conversation=conversation_out(row), message=message.to_out())
        )

    @bp.post("/conversations/<session_id>/take")
    @documented(
        Doc(
            "Take the conversation over from the bot (exactly one agent wins)",
            "inbox",
            ConversationChanged,
            auth="staff",
        )
    )
    async def take(session_id: str) -> dict[str, Any]:
        me = await agent()
        return await changed(parse_id(session_id, "sessionId"), conv.take(me))

    @bp.post("/conversations/<session_id>/hand-back")
    @documented(
        Doc("Hand the conversation back to the bot", "inbox", ConversationChanged, auth="staff")
    )
    async def hand_back(session_id: str) -> dict[str, Any]:
        me = await agent()
        return await changed(parse_id(session_id, "sessionId"), conv.hand_back(me))

    @bp.post("/conversations/<session_id>/transfer")
    @documented(
        Doc(
            "Pass the conversation to another agent",
            "inbox",
            ConversationChanged,
            TransferRequest,
            auth="staff",
        )
    )
    async def transfer(session_id: str) -> dict[str, Any]:
        me = await agent()
        session_id = parse_id(session_id, "sessionId")
        body = await json_body(TransferRequest)
        target = await services.agents.by_id(body.agentId)
        if target is None or target.disabled:
            raise BadRequest(
                "agentId: no such enabled agent", code="unknown_agent", field="agentId"
            )
        return await changed(session_id, conv.transfer(me, target))

    @bp.post("/conversations/<session_id>/close")
    @documented(Doc("Close the conversation", "inbox", ConversationChanged, auth="staff"))
    async def close(session_id: str) -> dict[str, Any]:
        me = await agent()
        return await changed(parse_id(session_id, "sessionId"), conv.close(me))

    @bp.post("/conversations/<session_id>/messages")
    @documented(
        Doc(
            "Reply to the shopper (only while holding the conversation)",
            "inbox",
            AgentReplied,
            AgentReplyRequest,
            auth="staff",
        )
    )
    async def reply(session_id: str) -> dict[str, Any]:
        me = await agent()
        session_id = parse_id(session_id, "sessionId")
        body = await json_body(AgentReplyRequest)
        files = check_attachments(body.attachments, services.limits)
        content = check_content(body.content, services.limits, with_attachments=bool(files))
        message = await services.actors.agent_send(session_id, me, content, files)
        return wire(AgentReplied(message=message.to_out()))

    return bp


def conversation_out(row: InboxRow) -> ConversationOut:
    return ConversationOut(
        sessionId=row.id,
        state=row.state.value,
        agentId=row.agent_id,
        agentName=row.agent_name,
        handoffReason=row.handoff_reason,
        stateChangedAt=iso(row.state_changed_at),
        userId=row.user_id,
        guestEmail=row.guest_email,
        metadata=row.metadata,
        userContext=row.user_context,
        createdAt=iso(row.created_at),
        updatedAt=iso(row.updated_at),
        lastSeq=row.last_seq,
        lastSender=row.last_sender,
        lastContent=row.last_content,
        lastAt=iso(row.last_at) if row.last_at else None,
        lastReadSeq=row.last_read_seq,
        unread=row.unread,
    )
