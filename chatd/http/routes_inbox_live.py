"""POST /api/inbox/conversations/{id}/read: the signed-in agent has seen a conversation up to a
message. Unread counts are kept on the server per agent (sql/queries/inbox_live.sql), so they
survive a reload and agree on all of the agent's devices, which hear of it on their sockets."""

from __future__ import annotations

from typing import Any

import structlog
from quart import Blueprint

from chatd.core.ids import parse_id
from chatd.core.inbox_live import ReadMark, ReadRequest
from chatd.core.responses import wire
from chatd.db.reads import ReadStore
from chatd.errors import NotFound
from chatd.http.body import json_body
from chatd.http.openapi import Doc, documented
from chatd.http.services import Services
from chatd.http.staff_auth import request_agent, staff_blueprint

log = structlog.get_logger(__name__)


def inbox_live_routes(services: Services) -> Blueprint:
    bp = staff_blueprint("inbox_live", services, url_prefix="/api/inbox")
    reads = ReadStore(services.pool)

    @bp.post("/conversations/<session_id>/read")
    @documented(
        Doc(
            "You have seen the conversation up to message `lastSeq`: its unread count is reset",
            "inbox",
            ReadMark,
            ReadRequest,
            auth="staff",
        )
    )
    async def read(session_id: str) -> dict[str, Any]:
        me = await request_agent(services)
        session_id = parse_id(session_id, "sessionId")
        body = await json_body(ReadRequest)
        mark = await reads.mark_read(me.id, session_id, body.lastSeq)
        if mark is None:
            raise NotFound(f"no conversation {session_id!r}", code="conversation_not_found")
        log.debug("inbox_read", session_id=session_id, last_read_seq=mark.last_read_seq)
        return wire(
            ReadMark(sessionId=mark.session_id, lastReadSeq=mark.last_read_seq, unread=mark.unread)
        )

    return bp
