"""The admin API's insights under /api/admin/: full-text search over messages, conversation
tags, and a shopper's data on request (export, deletion, the deletions' audit). Behind the
admin token like the rest of the admin API (routes_admin.py).

A shopper is named in a POST body, never in a URL: identifiers in URLs end up in access logs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import structlog
from quart import Blueprint, Response, request

from chatd.core.durations import parse_when
from chatd.core.ids import parse_id
from chatd.core.insights_wire import (
    MAX_SEARCH_DEPTH,
    ErasureOut,
    Erasures,
    ErasuresQuery,
    SearchHitOut,
    SearchQuery,
    SearchResults,
    Segment,
    SessionTags,
    ShopperDeleted,
    ShopperDeleteRequest,
    ShopperExport,
    ShopperExportRequest,
    TagCountOut,
    TagList,
    TagsQuery,
)
from chatd.core.query import parse_query
from chatd.core.rating_filter import parse_rating_filter
from chatd.core.responses import wire
from chatd.core.search import segments, snippet, terms
from chatd.core.tags import RULE, normalise_tag
from chatd.core.transcript import shopper_json, transcript_text
from chatd.core.wire import iso
from chatd.db.agents import AgentStore
from chatd.db.export import Transcript, transcript_pages
from chatd.db.search import SearchFilters, SearchHit, SearchStore
from chatd.db.shoppers import Erasure, Shopper, erase_shopper
from chatd.db.shoppers import erasures as list_erasures
from chatd.db.tags import TagStore
from chatd.errors import BadRequest
from chatd.http.body import client_ip, json_body
from chatd.http.openapi import Doc, documented
from chatd.http.routes_admin import PREFIX, guard_admin, query_tag
from chatd.http.services import Services

log = structlog.get_logger(__name__)


def insights_routes(services: Services) -> Blueprint:
    bp = Blueprint("insights", __name__, url_prefix=PREFIX)
    guard_admin(bp, services)
    searches = SearchStore(services.pool, services.settings.search.language)
    tags = TagStore(services.pool)

    @bp.get("/search")
    @documented(
        Doc(
            "Full-text search over messages, with filters; one page of matches",
            "admin",
            SearchResults,
            query=SearchQuery,
            auth="admin",
        )
    )
    async def search() -> dict[str, Any]:
        args = parse_query(SearchQuery, request.args)
        q = args.q.strip()
        if not q:
            raise BadRequest("q must hold a word to search for", code="invalid_query", field="q")
        if args.page * args.limit > MAX_SEARCH_DEPTH:
            raise BadRequest(
                f"at most the first {MAX_SEARCH_DEPTH} matches are paged through: narrow the"
                " search (a date range, a tag, more words)",
                code="page_too_deep",
                field="page",
            )
        found = await searches.search(
            q,
            await search_filters(args, services.agents),
            sort=args.sort,
            offset=(args.page - 1) * args.limit,
            limit=args.limit,
        )
        return wire(
            SearchResults(
                q=q,
                parsed=found.parsed,
                language=services.settings.search.language,
                sort=args.sort,
                page=args.page,
                limit=args.limit,
                hasMore=found.has_more,
                results=[hit_to_wire(hit) for hit in found.hits],
            )
        )

    @bp.get("/tags")
    @documented(
        Doc(
            "Every tag, with how many conversations carry it",
            "admin",
            TagList,
            query=TagsQuery,
            auth="admin",
        )
    )
    async def tag_list() -> dict[str, Any]:
        limit = parse_query(TagsQuery, request.args).limit
        counted = await tags.counts(limit)
        return wire(TagList(tags=[TagCountOut(tag=c.tag, sessions=c.sessions) for c in counted]))

    @bp.put("/sessions/<session_id>/tags/<tag>")
    @documented(Doc("Tag a conversation (staff)", "admin", SessionTags, auth="admin"))
    async def add_tag(session_id: str, tag: str) -> dict[str, Any]:
        session_id, tag = parse_id(session_id, "sessionId"), path_tag(tag)
        held = await tags.add(session_id, tag)
        log.info("admin_tag_added", session_id=session_id, tag=tag)
        return wire(SessionTags(sessionId=session_id, tags=held))

    @bp.delete("/sessions/<session_id>/tags/<tag>")
    @documented(Doc("Remove a tag from a conversation", "admin", SessionTags, auth="admin"))
    async def remove_tag(session_id: str, tag: str) -> dict[str, Any]:
        session_id, tag = parse_id(session_id, "sessionId"), path_tag(tag)
        held = await tags.remove(session_id, tag)
        log.info("admin_tag_removed", session_id=session_id, tag=tag)
        return wire(SessionTags(sessionId=session_id, tags=held))

    @bp.post("/shoppers/export")
    @documented(
        Doc(
            "Everything stored about one shopper (all their conversations), as JSON or text",
            "admin",
            ShopperExport,
            ShopperExportRequest,
            auth="admin",
            media=("text/plain",),
        )
    )
    async def shopper_export() -> Response:
        body = await json_body(ShopperExportRequest)
        shopper = shopper_of(body.userId, body.email)
        found = [
            t
            async for page in transcript_pages(services.pool, shopper.export_range())
            for t in page
        ]
        log.info("admin_shopper_exported", subject=shopper.subject, sessions=len(found))
        name = "shopper-data." + ("txt" if body.format == "text" else "json")
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if body.format == "text":
            text = "".join(transcript_text(t.session, t.messages) + "\n" for t in found)
            return Response(text, content_type="text/plain; charset=utf-8", headers=headers)
        data = json.dumps(shopper_export_body(shopper, found), ensure_ascii=False, indent=2)
        return Response(
            data + "\n", content_type="application/json; charset=utf-8", headers=headers
        )

    @bp.post("/shoppers/delete")
    @documented(
        Doc(
            "Delete everything stored about one shopper, and record that it was done",
            "admin",
            ShopperDeleted,
            ShopperDeleteRequest,
            auth="admin",
        )
    )
    async def shopper_delete() -> dict[str, Any]:
        body = await json_body(ShopperDeleteRequest)
        shopper = shopper_of(body.userId, body.email)
        by = f"admin api from {client_ip(services.settings.server.proxy_trust)}"
        erased = await erase_shopper(
            services.pool, shopper, by, services.attachments.disk, vacuum=body.vacuum
        )
        return wire(
            ShopperDeleted(erasure=erasure_to_wire(erased.erasure), vacuumed=erased.vacuumed)
        )

    @bp.get("/shoppers/erasures")
    @documented(
        Doc(
            "Deletions on request, newest first (the audit)",
            "admin",
            Erasures,
            query=ErasuresQuery,
            auth="admin",
        )
    )
    async def erasure_list() -> dict[str, Any]:
        limit = parse_query(ErasuresQuery, request.args).limit
        found = await list_erasures(services.pool, limit=limit)
        return wire(Erasures(erasures=[erasure_to_wire(e) for e in found]))

    return bp


def path_tag(raw: str) -> str:
    tag = normalise_tag(raw)
    if tag is None:
        raise BadRequest(RULE, code="invalid_tag", field="tag")
    return tag


def shopper_of(user_id: str | None, email: str | None) -> Shopper:
    if (user_id is None) == (email is None):
        raise BadRequest(
            "name the shopper by userId or by email (one of them)",
            code="invalid_shopper",
            field="userId" if user_id is not None else "email",
        )
    if email is not None and not email.strip():
        raise BadRequest("email is blank", code="invalid_shopper", field="email")
    return Shopper(user_id=user_id, email=email)


async def search_filters(args: SearchQuery, agents: AgentStore) -> SearchFilters:
    shopper = args.shopper.strip() or None
    return SearchFilters(
        since=moment(args.since, "since"),
        until=moment(args.until, "until"),
        sender=None if args.sender == "any" else args.sender,
        tag=query_tag(args.tag),
        failed=args.status == "failed",
        rating=parse_rating_filter(args.rating),
        user_id=shopper,
        email=shopper,
        handed_off=handed_off(args.status, args.handoff),
        state=args.state or None,
        agent_id=await agent_named(agents, args.agent),
    )


def handed_off(status: str, handoff: str) -> bool | None:
    """status=bot_only is handoff=no, said the older way; the two must agree."""
    wanted = {"": None, "yes": True, "no": False}[handoff]
    if status != "bot_only":
        return wanted
    if wanted is True:
        raise BadRequest(
            "status=bot_only (never handed to a person) contradicts handoff=yes",
            code="invalid_query",
            field="handoff",
        )
    return False


async def agent_named(agents: AgentStore, raw: str) -> str | None:
    """The id of the agent named by id or by email (ignoring case); 400 for nobody."""
    name = raw.strip()
    if not name:
        return None
    found = await agents.named(name)
    if found is None:
        raise BadRequest(
            f"agent: no agent has the id or email {name!r}", code="unknown_agent", field="agent"
        )
    return found.id


def moment(raw: str, field: str) -> datetime | None:
    if not raw.strip():
        return None
    try:
        value = parse_when(raw, datetime.now(UTC))
    except (ValueError, OverflowError) as exc:
        raise BadRequest(f"{field}: {exc}", code="invalid_query", field=field) from None
    if not datetime(1, 1, 2, tzinfo=UTC) <= value <= datetime(9999, 12, 30, tzinfo=UTC):
        raise BadRequest(f"{field} is out of range", code="invalid_query", field=field)
    return value


def hit_to_wire(hit: SearchHit) -> SearchHitOut:
    parts = segments(hit.headline)
    return SearchHitOut(
        messageId=hit.message_id,
        sessionId=hit.session_id,
        seq=hit.seq,
        senderType=hit.sender_type,
        createdAt=iso(hit.created_at),
        rank=hit.rank,
        snippet=[Segment(text=p.text, match=p.match) for p in snippet(parts)],
        terms=terms(parts),
        userId=hit.user_id,
        guestEmail=hit.guest_email,
        tags=list(hit.tags),
    )


def shopper_export_body(shopper: Shopper, found: list[Transcript]) -> dict[str, Any]:
    conversations = [(t.session, t.messages) for t in found]
    return shopper_json(shopper.named(), conversations, datetime.now(UTC))


def erasure_to_wire(erasure: Erasure) -> ErasureOut:
    return ErasureOut(
        id=erasure.id,
        erasedAt=iso(erasure.erased_at),
        requestedBy=erasure.requested_by,
        subject=erasure.subject,
        subjectHash=erasure.subject_hash,
        deleted=erasure.deleted,
    )
