"""Canned responses, managed by admins under /api/admin/canned-responses: a signed-in admin
(cookie + CSRF) or the admin token, as the rest of the admin API; an agent gets 403. Agents
read them from GET /api/inbox/canned-responses and insert one with /shortcut."""

from __future__ import annotations

from typing import Any

import structlog
from quart import Blueprint

from chatd.core.ids import parse_id
from chatd.core.notes import (
    CannedDeleted,
    CannedRequest,
    CannedResponses,
    CannedSaved,
)
from chatd.core.responses import wire
from chatd.http.body import json_body
from chatd.http.openapi import Doc, documented
from chatd.http.routes_admin import guard_admin
from chatd.http.services import Services

log = structlog.get_logger(__name__)


def canned_routes(services: Services) -> Blueprint:
    bp = Blueprint("canned", __name__, url_prefix="/api/admin/canned-responses")
    guard_admin(bp, services)
    store = services.canned

    @bp.get("")
    @documented(Doc("The canned responses, by shortcut", "admin", CannedResponses, auth="admin"))
    async def listed() -> dict[str, Any]:
        found = await store.list()
        return wire(CannedResponses(cannedResponses=[c.to_out() for c in found]))

    @bp.post("")
    @documented(
        Doc(
            "Add a canned response (its shortcut unique)",
            "admin",
            CannedSaved,
            CannedRequest,
            auth="admin",
            status=201,
        )
    )
    async def add() -> tuple[dict[str, Any], int]:
        body = await json_body(CannedRequest)
        saved = await store.add(body.shortcut, body.title, body.content)
        log.info("canned_response_added", canned_id=saved.id, shortcut=saved.shortcut)
        return wire(CannedSaved(cannedResponse=saved.to_out())), 201

    @bp.put("/<canned_id>")
    @documented(Doc("Change a canned response", "admin", CannedSaved, CannedRequest, auth="admin"))
    async def change(canned_id: str) -> dict[str, Any]:
        canned_id = parse_id(canned_id, "cannedId")
        body = await json_body(CannedRequest)
        saved = await store.update(canned_id, body.shortcut, body.title, body.content)
        log.info("canned_response_changed", canned_id=saved.id, shortcut=saved.shortcut)
        return wire(CannedSaved(cannedResponse=saved.to_out()))

    @bp.delete("/<canned_id>")
    @documented(Doc("Delete a canned response", "admin", CannedDeleted, auth="admin"))
    async def delete(canned_id: str) -> dict[str, Any]:
        canned_id = parse_id(canned_id, "cannedId")
        await store.delete(canned_id)
        log.info("canned_response_deleted", canned_id=canned_id)
        return wire(CannedDeleted(deleted=canned_id))

    return bp
