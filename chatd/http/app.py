"""The QuartTrio application: routes, limits and error rendering, built from Services."""

from __future__ import annotations

import structlog
from quart import request
from quart_trio import QuartTrio

from chatd.core.tokens import new_id
from chatd.http.cors import cors_headers
from chatd.http.errors import register_error_handlers
from chatd.http.routes_chat import chat_routes
from chatd.http.routes_demo_bot import demo_bot_routes
from chatd.http.routes_events import events_routes
from chatd.http.routes_health import health_routes
from chatd.http.routes_web import web_routes
from chatd.http.routes_webhook import webhook_routes
from chatd.http.routes_ws import ws_routes
from chatd.http.services import Services


def create_app(services: Services) -> QuartTrio:
    app = QuartTrio("chatd")
    app.config["MAX_CONTENT_LENGTH"] = services.settings.server.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    @app.before_request
    async def bind_request_ids() -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=new_id(), path=request.path)

    app.register_blueprint(chat_routes(services))
    app.register_blueprint(health_routes(services))
    app.register_blueprint(webhook_routes(services))
    app.register_blueprint(ws_routes(services))
    app.register_blueprint(events_routes(services))
    demo = not services.settings.n8n.webhook_url
    if demo:
        app.register_blueprint(demo_bot_routes(services.settings))
    app.register_blueprint(web_routes(demo=demo))
    app.after_request(cors_headers(lambda: services.allowed_origins))
    register_error_handlers(app)
    return app
