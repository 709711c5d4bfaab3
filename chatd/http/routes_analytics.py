"""GET /api/admin/analytics: conversation insights over a window, as JSON or one chart's numbers
as CSV, behind the admin token like the rest of /api/admin (routes_admin.py).

Rolled-up hours (kept by the maintenance leader) plus the hours since, counted live: a 30-day
window reads about 720 rollup rows and an hour or two of messages, however many there are.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import structlog
from quart import Blueprint, Response, request

from chatd.core.analytics_wire import (
    TOP_INTENTS,
    Analytics,
    AnalyticsQuery,
    analytics_report,
    chart_csv,
)
from chatd.core.insights import parse_window
from chatd.core.query import parse_query
from chatd.core.responses import wire
from chatd.db.analytics import AnalyticsStore
from chatd.errors import BadRequest, RateLimited, Unauthorized
from chatd.http.body import client_ip
from chatd.http.openapi import Doc, documented
from chatd.http.routes_admin import PREFIX, check_admin_token
from chatd.http.services import Services

log = structlog.get_logger(__name__)


def admin_only(bp: Blueprint, services: Services) -> None:
    """Every route of `bp` behind the admin token, as routes_admin.py's are."""

    @bp.before_request
    async def authorize() -> None:
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


def analytics_routes(services: Services) -> Blueprint:
    bp = Blueprint("analytics", __name__, url_prefix=PREFIX)
    store = AnalyticsStore(services.pool)
    admin_only(bp, services)

    @bp.get("/analytics")
    @documented(
        Doc(
            "Conversations, messages, answer times, delivery failures, ratings and intents",
            "admin",
            Analytics,
            query=AnalyticsQuery,
            auth="admin",
            media=("text/csv",),
            description="format=csv with chart=<name> answers that chart's numbers as CSV.",
        )
    )
    async def analytics() -> Response | dict[str, Any]:
        args = parse_query(AnalyticsQuery, request.args)
        if (args.format == "csv") != (args.chart is not None):
            raise BadRequest(
                "format=csv needs chart=<name>, and chart needs format=csv",
                code="invalid_query",
                field="chart",
            )
        window = parse_window(
            range_=args.range,
            start=args.start,
            end=args.end,
            bucket=args.bucket,
            tz=args.tz,
            now=datetime.now(UTC),
        )
        rolled_until, hours, intents = await store.figures(
            window.start, window.end, intents=TOP_INTENTS
        )
        report = analytics_report(window, rolled_until, hours, intents)
        if args.chart is None:
            return wire(report)
        name = re.sub(r"[^0-9A-Za-z-]", "", f"{args.chart}-{report.start[:10]}-{report.end[:10]}")
        return Response(
            chart_csv(report, args.chart),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="chatd-{name}.csv"'},
        )

    return bp
