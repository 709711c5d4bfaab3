"""The QuartTrio application: routes, limits and error rendering, built from Services."""

from __future__ import annotations

import structlog
import trio
from quart import Response, request
from quart_trio import QuartTrio

from chatd.core.tokens import new_id
from chatd.http.cors import cors_headers
from chatd.http.errors import register_error_handlers
from chatd.http.keepalive import KeepConnectionUsable
from chatd.http.openapi import openapi_routes
from chatd.http.routes_admin import admin_routes
from chatd.http.routes_analytics import analytics_routes
from chatd.http.routes_canned import canned_routes
from chatd.http.routes_chat import chat_routes
from chatd.http.routes_csat import csat_routes, staff_close_routes
from chatd.http.routes_demo_bot import demo_bot_routes
from chatd.http.routes_events import events_routes
from chatd.http.routes_files import UPLOAD_PATH, files_routes, upload_limit
from chatd.http.routes_handoff import handoff_routes
from chatd.http.routes_health import health_routes
from chatd.http.routes_inbox import inbox_routes
from chatd.http.routes_inbox_live import inbox_live_routes
from chatd.http.routes_inbox_tools import STAFF_UPLOAD_PATH, inbox_tools_routes
from chatd.http.routes_inbox_ws import inbox_ws_routes
from chatd.http.routes_insights import insights_routes
from chatd.http.routes_metrics import metrics_routes
from chatd.http.routes_n8n_chat import PATH as N8N_CHAT_PATH
from chatd.http.routes_n8n_chat import form_limit, n8n_chat_routes
from chatd.http.routes_staff import staff_routes
from chatd.http.routes_web import web_routes
from chatd.http.routes_webhook import webhook_routes
from chatd.http.routes_ws import ws_routes
from chatd.http.services import Services
from chatd.http.streaming import STREAMED_BODIES, StreamingHTTPConnection, release_current


def create_app(services: Services) -> QuartTrio:
    app = _base_app("chatd", services)
    app.register_blueprint(chat_routes(services))
    app.register_blueprint(csat_routes(services))
    app.register_blueprint(staff_close_routes(services))
    app.register_blueprint(files_routes(services))
    # Uploads stream with backpressure, under their own limit (chatd/http/streaming.py).
    max_file_bytes = services.settings.attachments.max_file_bytes
    app.config[STREAMED_BODIES] = {
        UPLOAD_PATH: upload_limit(max_file_bytes),
        N8N_CHAT_PATH: form_limit(services.settings),  # @n8n/chat's form with its files
        STAFF_UPLOAD_PATH: upload_limit(max_file_bytes),
    }
    app.register_blueprint(health_routes(services))
    app.register_blueprint(webhook_routes(services))
    app.register_blueprint(ws_routes(services))
    app.register_blueprint(events_routes(services))
    app.register_blueprint(admin_routes(services))
    app.register_blueprint(staff_routes(services))
    app.register_blueprint(inbox_routes(services))
    app.register_blueprint(inbox_live_routes(services))
    app.register_blueprint(inbox_ws_routes(services))
    app.register_blueprint(inbox_tools_routes(services))
    app.register_blueprint(canned_routes(services))
    app.register_blueprint(handoff_routes(services))
    app.register_blueprint(insights_routes(services))
    app.register_blueprint(analytics_routes(services))
    app.register_blueprint(n8n_chat_routes(services))
    demo = not services.settings.n8n.webhook_url
    if demo:
        app.register_blueprint(demo_bot_routes(services.settings))
    app.register_blueprint(web_routes(demo=demo))
    if not services.settings.metrics.listen:
        app.register_blueprint(metrics_routes(services))
    app.register_blueprint(openapi_routes())  # describes the routes registered above

    def refused(origin: str) -> None:
        allowed, now = services.state.allowed_origins, trio.current_time()
        services.refused_origins.refused("cors_origin_refused", origin, allowed, now)

    app.after_request(cors_headers(lambda: services.state.allowed_origins, refused))
    return app


def create_metrics_app(services: Services) -> QuartTrio:
    """/metrics alone, for metrics.listen (an address only Prometheus reaches)."""
    app = _base_app("chatd-metrics", services)
    app.register_blueprint(metrics_routes(services))
    return app


def _base_app(name: str, services: Services) -> QuartTrio:
    app = QuartTrio(name, static_folder=None)  # chatd/web/ is served by routes_web.py
    # Quart's own documented way to wrap its ASGI app in a middleware.
    app.asgi_app = KeepConnectionUsable(app.asgi_app)  # type: ignore[method-assign]
    app.asgi_http_class = StreamingHTTPConnection
    app.config["MAX_CONTENT_LENGTH"] = services.settings.server.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    @app.before_request
    async def bind_request_ids() -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=new_id(), path=request.path)

    @app.after_request
    async def release_streamed_body(response: Response) -> Response:
        release_current()  # answered: the rest of a streamed body is only read to be dropped
        return response

    register_error_handlers(app)
    return app
