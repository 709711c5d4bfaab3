"""Health: /api/chat/health in the guide's format (503 "unhealthy" without a database), and
/livez, which only says the process and its event loop answer (no database: for liveness probes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import trio
from quart import Blueprint

from chatd.db.health import health_counts
from chatd.errors import DatabaseUnavailable
from chatd.http.services import Services

QUEUE_WARNING_DEPTH = 100
HEALTH_TIMEOUT_SECONDS = 3.0


def health_routes(services: Services) -> Blueprint:
    bp = Blueprint("health", __name__)

    @bp.get("/livez")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @bp.get("/api/chat/health")
    async def health() -> tuple[dict[str, Any], int]:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        try:
            with trio.fail_after(HEALTH_TIMEOUT_SECONDS):
                counts = await health_counts(services.pool)
        except (DatabaseUnavailable, trio.TooSlowError) as exc:
            reason = str(exc) or "database did not answer in time"
            checks = {"database": "unhealthy", "queue": "unknown", "webhook": "unknown"}
            return {"status": "unhealthy", "timestamp": now, "checks": checks, "error": reason}, 503
        queue = "healthy" if counts.pending_webhooks < QUEUE_WARNING_DEPTH else "warning"
        return {
            "status": "healthy" if queue == "healthy" else "degraded",
            "timestamp": now,
            # webhook: "unknown" until the delivery pipeline reports n8n's recent success rate.
            "checks": {"database": "healthy", "queue": queue, "webhook": "unknown"},
            "metrics": {
                "pendingWebhooks": counts.pending_webhooks,
                "activeSessions": counts.active_sessions,
                "messagesLast24h": counts.messages_last_24h,
            },
        }, 200

    return bp
