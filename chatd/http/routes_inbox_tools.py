"""The inbox's tools under /api/inbox, for signed-in agents (cookie + CSRF, staff_auth.py):
internal notes in a conversation (staff only: stored apart from its messages and published to
the inbox's feed alone), the canned responses to pick from, and files the holding agent
uploads into the conversation to send with a reply. Admins manage canned responses in
routes_canned.py."""

from __future__ import annotations

from typing import Any

import structlog
from quart import Blueprint, request

from chatd.core.ids import parse_id
from chatd.core.notes import CannedResponses, NoteAdded, NoteRequest, Notes
from chatd.core.responses import ErrorBody, UploadAccepted, wire
from chatd.core.staff import Agent
from chatd.core.wire import UploadForm, check_content
from chatd.errors import ClientError
from chatd.http.body import json_body
from chatd.http.openapi import Doc, documented
from chatd.http.routes_files import accepted, upload_boundary
from chatd.http.services import Services
from chatd.http.staff_auth import request_agent, staff_blueprint

log = structlog.get_logger(__name__)

STAFF_UPLOAD_PATH = "/api/inbox/upload"


def inbox_tools_routes(services: Services) -> Blueprint:
    bp = staff_blueprint("inbox_tools", services, url_prefix="/api/inbox")

    async def agent() -> Agent:
        return await request_agent(services)

    @bp.get("/conversations/<session_id>/notes")
    @documented(Doc("A conversation's internal notes, oldest first", "inbox", Notes, auth="staff"))
    async def notes(session_id: str) -> dict[str, Any]:
        await agent()
        found = await services.notes.of_session(parse_id(session_id, "sessionId"))
        return wire(Notes(notes=[n.to_out() for n in found]))

    @bp.post("/conversations/<session_id>/notes")
    @documented(
        Doc(
            "Write an internal note: staff see it live, the shopper and n8n never do",
            "inbox",
            NoteAdded,
            NoteRequest,
            auth="staff",
            status=201,
        )
    )
    async def add_note(session_id: str) -> tuple[dict[str, Any], int]:
        me = await agent()
        session_id = parse_id(session_id, "sessionId")
        body = await json_body(NoteRequest)
        content = check_content(body.content, services.limits)
        note = await services.notes.add(session_id, me, content)
        log.info("inbox_note_added", session_id=session_id, note_id=note.id)
        return wire(NoteAdded(note=note.to_out())), 201

    @bp.get("/canned-responses")
    @documented(
        Doc(
            "The canned responses (admins manage them under /api/admin/canned-responses)",
            "inbox",
            CannedResponses,
            auth="staff",
        )
    )
    async def canned() -> dict[str, Any]:
        await agent()
        found = await services.canned.list()
        return wire(CannedResponses(cannedResponses=[c.to_out() for c in found]))

    @bp.post("/upload")
    @documented(
        Doc(
            "Upload one file into a conversation you hold (streamed); send its attachmentId"
            " with your reply",
            "inbox",
            UploadAccepted,
            UploadForm,
            auth="staff",
            status=201,
            body_media="multipart/form-data",
            also={413: ErrorBody, 415: ErrorBody, 429: ErrorBody},
        )
    )
    async def upload() -> tuple[dict[str, Any], int]:
        attachments = services.attachments
        try:
            me = await agent()  # first: CSRF and sign-in before any of the body is read
            boundary = upload_boundary(services)

            async def authorize(session_id: str) -> None:
                structlog.contextvars.bind_contextvars(session_id=session_id)
                await services.notes.check_holding(session_id, me)

            uploaded = await attachments.upload(request.body, boundary, authorize)
        except ClientError as exc:
            attachments.refused(exc.code)
            raise
        log.info("inbox_file_uploaded", attachment_id=uploaded.id)
        return wire(accepted(services, uploaded)), 201

    return bp
