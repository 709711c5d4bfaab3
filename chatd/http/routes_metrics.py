"""GET /metrics: Prometheus text format, behind metrics.token when one is set.

Served on the main port, or alone on metrics.listen (a private address) when that is set.
"""

from __future__ import annotations

import trio
from prometheus_client import CONTENT_TYPE_LATEST
from quart import Blueprint, Response, request

from chatd.http.auth import authorize_operator
from chatd.http.body import client_ip
from chatd.http.openapi import Doc, documented
from chatd.http.services import Services


def metrics_routes(services: Services) -> Blueprint:
    bp = Blueprint("metrics", __name__)

    @bp.get("/metrics")
    @documented(
        Doc("Prometheus metrics (text exposition format)", "metrics", "text/plain", auth="metrics")
    )
    async def metrics() -> Response:
        token = services.settings.metrics.token
        if token:
            ip = client_ip(services.settings.server.proxy_trust)
            await authorize_operator(
                services.operator_auth_failures,
                ip,
                trio.current_time(),
                request.headers.get("Authorization"),
                token,
                "metrics",
            )
        await services.metrics.refresh()
        return Response(
            services.metrics.render(),
            content_type=CONTENT_TYPE_LATEST,
            headers={"Cache-Control": "no-store"},
        )

    return bp
