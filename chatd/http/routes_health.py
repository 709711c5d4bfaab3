"""Health: /api/chat/health in the guide's format (503 "unhealthy" without a database);
/livez, which only says the process and its event loop answer (liveness: restart me if not);
/readyz, whether this process should get new clients now (readiness: the database answers, the
LISTEN connection is up, and it is not shutting down).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import trio
from quart import Blueprint

from chatd.core.responses import (
    Health,
    HealthChecks,
    HealthMetrics,
    Liveness,
    Readiness,
    ReadinessChecks,
    wire,
)
from chatd.db.health import health_counts, ping
from chatd.errors import DatabaseUnavailable
from chatd.http.openapi import Doc, documented
from chatd.http.services import Services

QUEUE_WARNING_DEPTH = 100
WEBHOOK_HEALTHY = 0.95  # the guide's alert fires above 5 % webhook failures
HEALTH_TIMEOUT_SECONDS = 3.0
# Readiness probes give up after ~1 s (Kubernetes' default): say "not ready" before they do,
# e.g. while the embedded PostgreSQL restarts and the pool keeps trying to reconnect.
READY_TIMEOUT_SECONDS = 1.0


def health_routes(services: Services) -> Blueprint:
    bp = Blueprint("health", __name__)

    @bp.get("/livez")
    @documented(Doc("Liveness: the process and its event loop answer", "health", Liveness))
    async def live() -> dict[str, Any]:
        return wire(Liveness(status="alive"))

    @bp.get("/readyz")
    @documented(
        Doc(
            "Readiness: database, LISTEN connection, not shutting down",
            "health",
            Readiness,
            also={503: Readiness},
        )
    )
    async def ready() -> tuple[dict[str, Any], int]:
        try:
            with trio.fail_after(READY_TIMEOUT_SECONDS):
                await ping(services.pool)
            database = "up"
        except (DatabaseUnavailable, trio.TooSlowError):
            database = "down"
        # Read after the ping, which may have waited out a reconnect: the state as it is now.
        state = services.state
        checks = {
            "accepting": "no (shutting down)" if state.stopping else "yes",
            "listen": "up" if state.listener and state.listener.connected else "down",
            "database": database,
        }
        ok = checks == {"accepting": "yes", "listen": "up", "database": "up"}
        body = Readiness(
            status="ready" if ok else "not_ready", checks=ReadinessChecks.model_validate(checks)
        )
        return wire(body), 200 if ok else 503

    @bp.get("/api/chat/health")
    @documented(
        Doc(
            "Health in the guide's format (503 unhealthy without a database)",
            "health",
            Health,
            also={503: Health},
        )
    )
    async def health() -> tuple[dict[str, Any], int]:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        try:
            with trio.fail_after(HEALTH_TIMEOUT_SECONDS):
                counts = await health_counts(services.pool)
        except (DatabaseUnavailable, trio.TooSlowError) as exc:
            reason = str(exc) or "database did not answer in time"
            checks = HealthChecks(database="unhealthy", queue="unknown", webhook="unknown")
            down = Health(status="unhealthy", timestamp=now, checks=checks, error=reason)
            return wire(down), 503
        queue = "healthy" if counts.pending_webhooks < QUEUE_WARNING_DEPTH else "warning"
        webhook, rate, last_error = webhook_check(services)
        extra = {} if last_error is None else {"lastWebhookError": last_error}
        body = Health(
            status="healthy" if {queue, webhook} <= {"healthy", "unknown"} else "degraded",
            timestamp=now,
            checks=HealthChecks(database="healthy", queue=queue, webhook=webhook),
            metrics=HealthMetrics(
                pendingWebhooks=counts.pending_webhooks,
                activeSessions=counts.active_sessions,
                messagesLast24h=counts.messages_last_24h,
                deadLetters=counts.dead_letters,
                oldestPendingSeconds=round(counts.oldest_pending_seconds, 1),
                webhookSuccessRate=rate,
            ),
            **extra,
        )
        return wire(body), 200

    return bp


def webhook_check(services: Services) -> tuple[str, float | None, str | None]:
    """n8n's health as this process saw it: the share of the last 100 attempts it accepted."""
    dispatcher = services.state.dispatcher
    if dispatcher is None:
        return "unknown", None, None  # this process does not deliver (queue.dispatch = false)
    stats = dispatcher.statistics()
    rate = stats.success_rate
    if rate is None:
        return "unknown", None, None
    state = "healthy" if rate >= WEBHOOK_HEALTHY else "warning" if rate >= 0.5 else "unhealthy"
    return state, round(rate, 3), stats.last_error
