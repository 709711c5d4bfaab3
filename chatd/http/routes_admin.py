"""The admin JSON API under /api/admin/: queue, webhook health, dead letters, sessions and
transcripts, behind `Authorization: Bearer <admin.token>` (no token configured: 404, closed).

Answers are never cached (`Cache-Control: no-store`) and never carry CORS headers: the admin
page (/admin, served by routes_web.py) calls it from chatd's own origin.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import structlog
import trio
from quart import Blueprint, Response, request
from werkzeug.exceptions import MethodNotAllowed

from chatd.core.admin_wire import (
    Broadcasted,
    BroadcastRequest,
    Bucket,
    ClusterWebhook,
    DeadLetters,
    DeadQuery,
    LastMessage,
    LiveSessions,
    Overview,
    ProcessFigures,
    ProcessWebhook,
    Purged,
    PurgeRequest,
    QueueFigures,
    RecentError,
    Retried,
    Sessions,
    SessionsQuery,
    SessionSummaryOut,
    Throughput,
    Transcript,
    TranscriptQuery,
    WebhookHealth,
    WebhookTarget,
)
from chatd.core.ids import parse_id
from chatd.core.query import parse_query
from chatd.core.responses import wire
from chatd.core.tags import RULE, normalise_tag
from chatd.core.transcript import transcript_json, transcript_text
from chatd.core.urls import without_secrets
from chatd.core.wire import check_content, check_metadata, iso
from chatd.db.admin import BUCKET_SECONDS, AdminStore, SessionSummary
from chatd.db.admin import Overview as OverviewData
from chatd.errors import BadRequest, NotFound, RateLimited, Unauthorized
from chatd.http.address_limits import AddressLimit
from chatd.http.auth import authorize_operator
from chatd.http.body import client_ip, json_body
from chatd.http.openapi import Doc, documented
from chatd.http.routes_health import webhook_check
from chatd.http.services import Services
from chatd.http.staff_auth import COOKIE, require_admin, signed_in_agent

log = structlog.get_logger(__name__)

PREFIX = "/api/admin"


def admin_routes(services: Services) -> Blueprint:
    bp = Blueprint("admin", __name__, url_prefix=PREFIX)
    store = AdminStore(services.pool, services.attachments.links)
    guard_admin(bp, services)

    @bp.after_app_request
    async def never_cache(response: Response) -> Response:
        # App-wide, so 404s and 405s under the prefix (no blueprint matched) get it too.
        if request.path == PREFIX or request.path.startswith(f"{PREFIX}/"):
            response.headers["Cache-Control"] = "no-store"
            response.headers["X-Content-Type-Options"] = "nosniff"
            if response.status_code == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="chatd admin"'
        return response

    @bp.get("/overview")
    @documented(
        Doc("Queue, webhook health, throughput and recent errors", "admin", Overview, auth="admin")
    )
    async def overview() -> dict[str, Any]:
        return wire(overview_to_wire(await store.overview(), services))

    @bp.get("/dead")
    @documented(
        Doc("Dead letters, newest first", "admin", DeadLetters, query=DeadQuery, auth="admin")
    )
    async def dead_letters() -> dict[str, Any]:
        limit = parse_query(DeadQuery, request.args).limit
        dead = await store.dead_letters(limit)
        return wire(DeadLetters(deadLetters=[d.to_out() for d in dead], limit=limit))

    @bp.post("/dead/<job_id>/retry")
    @documented(Doc("Retry one dead letter", "admin", Retried, auth="admin"))
    async def retry_dead(job_id: str) -> dict[str, Any]:
        job_id = dead_letter_id(job_id)
        retried = await services.queue.retry_dead(job_id)
        if not retried:
            raise NotFound(f"no dead letter {job_id!r}", code="dead_letter_not_found")
        log.info("admin_dead_letter_retried", job_id=job_id)
        return wire(Retried(retried=retried))

    @bp.post("/dead/retry-all")
    @documented(Doc("Retry every dead letter", "admin", Retried, auth="admin"))
    async def retry_all() -> dict[str, Any]:
        retried = await services.queue.retry_dead(None)
        log.info("admin_dead_letters_retried", count=retried)
        return wire(Retried(retried=retried))

    @bp.delete("/dead/<job_id>")
    @documented(Doc("Delete one dead letter (its message stays)", "admin", Purged, auth="admin"))
    async def purge_one(job_id: str) -> dict[str, Any]:
        job_id = dead_letter_id(job_id)
        if not await store.purge_dead_job(job_id):
            raise NotFound(f"no dead letter {job_id!r}", code="dead_letter_not_found")
        log.info("admin_dead_letter_purged", job_id=job_id)
        return wire(Purged(purged=1))

    @bp.post("/dead/purge")
    @documented(
        Doc(
            "Delete dead letters older than a given age",
            "admin",
            Purged,
            PurgeRequest,
            auth="admin",
        )
    )
    async def purge_older() -> dict[str, Any]:
        body = await json_body(PurgeRequest)
        purged = await services.queue.purge_dead(body.olderThanSeconds)
        log.info("admin_dead_letters_purged", count=purged, older_than=body.olderThanSeconds)
        return wire(Purged(purged=purged))

    @bp.post("/broadcast")
    @documented(
        Doc(
            "A system message to every live session (or those whose metadata matches)",
            "admin",
            Broadcasted,
            BroadcastRequest,
            auth="admin",
        )
    )
    async def broadcast() -> dict[str, Any]:
        body = await json_body(BroadcastRequest)
        content = check_content(body.content, services.limits)
        metadata = check_metadata(body.metadata, services.limits)
        count = await store.broadcast(content, metadata)
        log.info("admin_broadcast", sessions=count, filtered=metadata is not None)
        return wire(Broadcasted(sessions=count))

    @bp.get("/sessions")
    @documented(
        Doc(
            "Sessions, newest first, optionally searched or by tag",
            "admin",
            Sessions,
            query=SessionsQuery,
            auth="admin",
        )
    )
    async def sessions() -> dict[str, Any]:
        args = parse_query(SessionsQuery, request.args)
        found = await store.sessions(
            limit=args.limit,
            live_only=args.status == "active",
            q=args.q.strip() or None,
            tag=query_tag(args.tag),
        )
        summaries = [summary_to_wire(s, services.hub.has(s.session.id)) for s in found]
        return wire(Sessions(sessions=summaries))

    @bp.get("/sessions/<session_id>/transcript")
    @documented(
        Doc(
            "A session's whole conversation, as JSON or plain text",
            "admin",
            Transcript,
            query=TranscriptQuery,
            auth="admin",
            media=("text/plain",),
        )
    )
    async def transcript(session_id: str) -> Response | dict[str, Any]:
        args = parse_query(TranscriptQuery, request.args)
        kind, download = args.format, args.download == "1"
        session_id = parse_id(session_id, "sessionId")
        found = await store.transcript(session_id)
        if found is None:
            raise NotFound(f"no session {session_id!r}", code="session_not_found")
        headers = {"Content-Disposition": attachment(session_id, kind)} if download else {}
        rating = await services.conversations.rating(session_id)
        audit = await services.takeover.audit(session_id)
        if kind == "text":
            text = transcript_text(found.session, found.messages, rating, audit)
            return Response(text, content_type="text/plain; charset=utf-8", headers=headers)
        body = transcript_json(found.session, found.messages, rating, audit)
        if not download:
            return body
        data = json.dumps(body, ensure_ascii=False, indent=2) + "\n"
        return Response(data, content_type="application/json; charset=utf-8", headers=headers)

    return bp


def guard_admin(bp: Blueprint, services: Services) -> None:
    """Every route of `bp` needs the admin token, or an admin's sign-in (checked before its view
    runs)."""

    @bp.before_request
    async def authorize() -> None:
        if "Authorization" not in request.headers and COOKIE in request.cookies:
            # A signed-in admin (the inbox's sign-in, with its CSRF token); not an agent.
            agent, _ = await signed_in_agent(
                services, request.cookies, request.method, request.headers
            )
            require_admin(agent)
            return
        ip = client_ip(services.settings.server.proxy_trust)
        try:
            await check_admin_token(
                request.headers.get("Authorization"),
                services.settings.admin.token,
                services.operator_auth_failures,
                ip,
            )
        except (Unauthorized, RateLimited) as exc:
            log.warning("admin_auth_failed", reason=exc.code, client_ip=ip)  # never the token
            raise


def query_tag(raw: str) -> str | None:
    """A `tag` query parameter in normal form; None when absent; 400 when it cannot be one."""
    if not raw.strip():
        return None
    tag = normalise_tag(raw)
    if tag is None:
        raise BadRequest(RULE, code="invalid_tag", field="tag")
    return tag


async def check_admin_token(
    authorization: str | None, expected: str, failures: AddressLimit, ip: str
) -> None:
    """404 while admin is closed; 401 for a missing or wrong token (compared in constant time);
    429 for an address that sent too many wrong ones."""
    if not expected:
        raise NotFound(
            "the admin API is off: set admin.token (CHATD_ADMIN__TOKEN, or the systemd"
            " credential admin.token), then `systemctl reload chatd` or restart it",
            code="admin_disabled",
        )
    await authorize_operator(failures, ip, trio.current_time(), authorization, expected, "admin")


def dead_letter_id(job_id: str) -> str:
    """The <job_id> of /dead/<job_id> routes; their POST-only siblings (/dead/purge and
    /dead/retry-all) match it too, and for them another method is a 405, not a bad id."""
    if job_id in ("purge", "retry-all"):
        raise MethodNotAllowed(valid_methods=["POST"])
    return parse_id(job_id, "jobId")


def attachment(session_id: str, kind: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", session_id)
    return f'attachment; filename="chat-{name}.{"txt" if kind == "text" else "json"}"'


def overview_to_wire(data: OverviewData, services: Services) -> Overview:
    queue, window = data.queue, data.webhook
    status, rate, last_error = webhook_check(services)
    dispatcher = services.state.dispatcher
    process = {}  # only a dispatching process has its own delivery figures
    if dispatcher is not None:
        stats = dispatcher.statistics()
        process["process"] = ProcessWebhook(
            delivered=stats.delivered,
            retried=stats.retried,
            dead=stats.dead,
            rescued=stats.rescued,
            ownerRescues=stats.owner_rescues,
            lostLeases=stats.lost_leases,
            invalidReplies=stats.invalid_replies,
            inFlight=stats.in_flight,
        )
    cluster = ClusterWebhook(
        windowSeconds=window.seconds,
        attempts=window.attempts,
        failures=window.failures,
        completed=window.completed,
        retrying=window.retrying,
        dead=window.dead,
        failureRate=round(window.failures / window.attempts, 3) if window.attempts else None,
    )
    actors = services.registry.statistics()
    close_codes = services.websockets.statistics().close_codes
    return Overview(
        generatedAt=iso(datetime.now(UTC)),
        queue=QueueFigures(
            pending=queue.pending,
            processing=queue.processing,
            completedLastHour=queue.completed_last_hour,
            dead=queue.dead,
            oldestPendingSeconds=round(queue.oldest_pending_seconds, 1),
        ),
        throughput=Throughput(
            bucketSeconds=BUCKET_SECONDS,
            buckets=[
                Bucket(start=iso(b.start), received=b.received, completed=b.completed)
                for b in data.throughput
            ],
        ),
        webhook=WebhookHealth(
            status=status,
            dispatching=dispatcher is not None,
            target=webhook_target(services.settings.n8n.webhook_url),
            successRate=rate,
            lastError=last_error,
            cluster=cluster,
            **process,
        ),
        sessions=LiveSessions(live=queue.live_sessions),
        process=ProcessFigures(
            connections=services.hub.connections,
            actors=actors.live_actors,
            actorRestarts=actors.restarts,
            closeCodes={str(code): n for code, n in close_codes.items()},
            signatureFailures=dict(services.callbacks.statistics().signature_failures),
        ),
        recentErrors=[
            RecentError(
                jobId=e.id,
                sessionId=e.session_id,
                messageId=e.message_id,
                content=e.content,
                status=e.status,
                error=e.last_error,
                httpStatus=e.last_status,
                at=iso(e.at),
            )
            for e in data.recent_errors
        ],
    )


def webhook_target(url: str) -> WebhookTarget:
    """Who answers: n8n at a URL (no secrets in it), or the built-in demo bot (no URL set)."""
    if url:
        return WebhookTarget(kind="n8n", url=without_secrets(url))
    return WebhookTarget(kind="demo", url=None)


def summary_to_wire(summary: SessionSummary, connected_here: bool) -> SessionSummaryOut:
    last = None
    if summary.last is not None:
        last = LastMessage(
            senderType=summary.last.sender_type,
            content=summary.last.content,
            createdAt=iso(summary.last.created_at),
        )
    return SessionSummaryOut(
        **summary.session.to_out().model_dump(),
        live=summary.live,
        messageCount=summary.message_count,
        lastMessage=last,
        connectedHere=connected_here,
    )
