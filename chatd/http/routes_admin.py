"""The admin JSON API under /api/admin/: queue, webhook health, dead letters, sessions and
transcripts, behind `Authorization: Bearer <admin.token>` (no token configured: 404, closed).

Answers are never cached (`Cache-Control: no-store`) and never carry CORS headers: the admin
page (/admin, served by routes_web.py) calls it from chatd's own origin.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
import trio
from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, request

from chatd.core.transcript import transcript_json, transcript_text
from chatd.core.urls import without_secrets
from chatd.core.wire import check_content, check_metadata, iso
from chatd.db.admin import BUCKET_SECONDS, AdminStore, DeadLetter, Overview, SessionSummary
from chatd.errors import BadRequest, NotFound, RateLimited, Unauthorized
from chatd.http.address_limits import AddressLimit
from chatd.http.auth import authorize_operator
from chatd.http.body import client_ip, json_body
from chatd.http.routes_health import webhook_check
from chatd.http.services import Services

log = structlog.get_logger(__name__)

PREFIX = "/api/admin"
MAX_DEAD_LIMIT = 1000
MAX_SESSION_LIMIT = 200
MAX_SEARCH_LENGTH = 255
MAX_PURGE_AGE_SECONDS = 100 * 365 * 86400
_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")  # ids chatd makes are uuids; anything else is unknown
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PurgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    olderThanSeconds: Annotated[float, Field(ge=0, le=MAX_PURGE_AGE_SECONDS)]


class BroadcastRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    content: Annotated[str, Field(min_length=1)]
    metadata: dict[str, Any] | None = None  # only sessions whose metadata contains this


def admin_routes(services: Services) -> Blueprint:
    bp = Blueprint("admin", __name__, url_prefix=PREFIX)
    store = AdminStore(services.pool)

    @bp.before_request
    async def authorize() -> None:
        ip = client_ip(services.settings.server.trust_forwarded_for)
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
    async def overview() -> dict[str, Any]:
        return overview_to_wire(await store.overview(), services)

    @bp.get("/dead")
    async def dead_letters() -> dict[str, Any]:
        args = known_args(request.args, {"limit"})
        limit = int_arg(args, "limit", 100, 1, MAX_DEAD_LIMIT)
        dead = await store.dead_letters(limit)
        return {"deadLetters": [dead_letter_to_wire(d) for d in dead], "limit": limit}

    @bp.post("/dead/<job_id>/retry")
    async def retry_dead(job_id: str) -> dict[str, Any]:
        retried = await services.queue.retry_dead(known_id(job_id, "dead letter"))
        if not retried:
            raise NotFound(f"no dead letter {job_id!r}", code="dead_letter_not_found")
        log.info("admin_dead_letter_retried", job_id=job_id)
        return {"retried": retried}

    @bp.post("/dead/retry-all")
    async def retry_all() -> dict[str, Any]:
        retried = await services.queue.retry_dead(None)
        log.info("admin_dead_letters_retried", count=retried)
        return {"retried": retried}

    @bp.delete("/dead/<job_id>")
    async def purge_one(job_id: str) -> dict[str, Any]:
        if not await store.purge_dead_job(known_id(job_id, "dead letter")):
            raise NotFound(f"no dead letter {job_id!r}", code="dead_letter_not_found")
        log.info("admin_dead_letter_purged", job_id=job_id)
        return {"purged": 1}

    @bp.post("/dead/purge")
    async def purge_older() -> dict[str, Any]:
        body = await json_body(PurgeRequest)
        purged = await services.queue.purge_dead(body.olderThanSeconds)
        log.info("admin_dead_letters_purged", count=purged, older_than=body.olderThanSeconds)
        return {"purged": purged}

    @bp.post("/broadcast")
    async def broadcast() -> dict[str, Any]:
        body = await json_body(BroadcastRequest)
        content = check_content(body.content, services.limits)
        metadata = check_metadata(body.metadata, services.limits)
        count = await store.broadcast(content, metadata)
        log.info("admin_broadcast", sessions=count, filtered=metadata is not None)
        return {"sessions": count}

    @bp.get("/sessions")
    async def sessions() -> dict[str, Any]:
        args = known_args(request.args, {"limit", "status", "q"})
        limit = int_arg(args, "limit", 50, 1, MAX_SESSION_LIMIT)
        live_only = choice_arg(args, "status", ("active", "all")) == "active"
        found = await store.sessions(limit=limit, live_only=live_only, q=search_arg(args, "q"))
        return {"sessions": [summary_to_wire(s, services.hub.has(s.session.id)) for s in found]}

    @bp.get("/sessions/<session_id>/transcript")
    async def transcript(session_id: str) -> Response | dict[str, Any]:
        args = known_args(request.args, {"format", "download"})
        kind = choice_arg(args, "format", ("json", "text"))
        download = choice_arg(args, "download", ("0", "1")) == "1"
        found = await store.transcript(known_id(session_id, "session"))
        if found is None:
            raise NotFound(f"no session {session_id!r}", code="session_not_found")
        headers = {"Content-Disposition": attachment(session_id, kind)} if download else {}
        if kind == "text":
            text = transcript_text(found.session, found.messages)
            return Response(text, content_type="text/plain; charset=utf-8", headers=headers)
        body = transcript_json(found.session, found.messages)
        if not download:
            return body
        data = json.dumps(body, ensure_ascii=False, indent=2) + "\n"
        return Response(data, content_type="application/json; charset=utf-8", headers=headers)

    return bp


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


def known_args(args: Mapping[str, str], allowed: set[str]) -> Mapping[str, str]:
    unknown = sorted(set(args) - allowed)
    if unknown:
        name = unknown[0]
        raise BadRequest(f"unknown query parameter {name!r}", code="unknown_field", field=name)
    return args


def int_arg(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw.strip()) or not low <= int(raw) <= high:
        raise BadRequest(
            f"{name} must be a whole number from {low} to {high}", code="invalid_query", field=name
        )
    return int(raw)


def choice_arg(args: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """The value of `name`, one of `choices`; the first is the default."""
    raw = args.get(name)
    if raw is None:
        return choices[0]
    if raw not in choices:
        raise BadRequest(
            f"{name} must be one of {', '.join(choices)}", code="invalid_query", field=name
        )
    return raw


def search_arg(args: Mapping[str, str], name: str) -> str | None:
    """A prefix to search for; None when absent or blank."""
    raw = args.get(name, "").strip()
    if len(raw) > MAX_SEARCH_LENGTH or _CONTROL.search(raw) or not _encodable(raw):
        raise BadRequest(
            f"{name} must be printable text of at most {MAX_SEARCH_LENGTH} characters",
            code="invalid_query",
            field=name,
        )
    return raw or None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: PostgreSQL could not store or compare it
        return False
    return True


def known_id(value: str, what: str) -> str:
    """An id as chatd makes them; anything else cannot exist (and never reaches the database)."""
    if not _ID.fullmatch(value):
        code = "session_not_found" if what == "session" else "dead_letter_not_found"
        raise NotFound(f"no {what} with that id", code=code)
    return value


def attachment(session_id: str, kind: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", session_id)
    return f'attachment; filename="chat-{name}.{"txt" if kind == "text" else "json"}"'


def overview_to_wire(data: Overview, services: Services) -> dict[str, Any]:
    queue, window = data.queue, data.webhook
    status, rate, last_error = webhook_check(services)
    dispatcher = services.state.dispatcher
    webhook: dict[str, Any] = {
        "status": status,
        "dispatching": dispatcher is not None,
        "target": webhook_target(services.settings.n8n.webhook_url),
        "successRate": rate,
        "lastError": last_error,
        "cluster": {
            "windowSeconds": window.seconds,
            "attempts": window.attempts,
            "failures": window.failures,
            "completed": window.completed,
            "retrying": window.retrying,
            "dead": window.dead,
            "failureRate": round(window.failures / window.attempts, 3) if window.attempts else None,
        },
    }
    if dispatcher is not None:
        stats = dispatcher.statistics()
        webhook["process"] = {
            "delivered": stats.delivered,
            "retried": stats.retried,
            "dead": stats.dead,
            "rescued": stats.rescued,
            "ownerRescues": stats.owner_rescues,
            "lostLeases": stats.lost_leases,
            "invalidReplies": stats.invalid_replies,
            "inFlight": stats.in_flight,
        }
    actors = services.registry.statistics()
    close_codes = services.websockets.statistics().close_codes
    return {
        "generatedAt": iso(datetime.now(UTC)),
        "queue": {
            "pending": queue.pending,
            "processing": queue.processing,
            "completedLastHour": queue.completed_last_hour,
            "dead": queue.dead,
            "oldestPendingSeconds": round(queue.oldest_pending_seconds, 1),
        },
        "throughput": {
            "bucketSeconds": BUCKET_SECONDS,
            "buckets": [
                {"start": iso(b.start), "received": b.received, "completed": b.completed}
                for b in data.throughput
            ],
        },
        "webhook": webhook,
        "sessions": {"live": queue.live_sessions},
        "process": {
            "connections": services.hub.connections,
            "actors": actors.live_actors,
            "actorRestarts": actors.restarts,
            "closeCodes": {str(code): n for code, n in close_codes.items()},
            "signatureFailures": dict(services.callbacks.statistics().signature_failures),
        },
        "recentErrors": [
            {
                "jobId": e.id,
                "sessionId": e.session_id,
                "messageId": e.message_id,
                "content": e.content,
                "status": e.status,
                "error": e.last_error,
                "httpStatus": e.last_status,
                "at": iso(e.at),
            }
            for e in data.recent_errors
        ],
    }


def webhook_target(url: str) -> dict[str, Any]:
    """Who answers: n8n at a URL (no secrets in it), or the built-in demo bot (no URL set)."""
    return {"kind": "n8n", "url": without_secrets(url)} if url else {"kind": "demo", "url": None}


def dead_letter_to_wire(dead: DeadLetter) -> dict[str, Any]:
    return {
        "jobId": dead.id,
        "sessionId": dead.session_id,
        "messageId": dead.message_id,
        "content": dead.content,
        "attempts": dead.attempts,
        "maxAttempts": dead.max_attempts,
        "httpStatus": dead.last_status,
        "lastError": dead.last_error,
        "createdAt": iso(dead.created_at),
        "deadAt": iso(dead.updated_at),
    }


def summary_to_wire(summary: SessionSummary, connected_here: bool) -> dict[str, Any]:
    last = None
    if summary.last is not None:
        last = {
            "senderType": summary.last.sender_type,
            "content": summary.last.content,
            "createdAt": iso(summary.last.created_at),
        }
    return {
        **summary.session.to_wire(),
        "live": summary.live,
        "messageCount": summary.message_count,
        "lastMessage": last,
        "connectedHere": connected_here,
    }
