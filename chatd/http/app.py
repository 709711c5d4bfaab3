"""The QuartTrio application: routes, limits and error rendering, built from Services."""

from __future__ import annotations

import structlog
from quart import request
from quart_trio import QuartTrio

from chatd.core.tokens import new_id
from chatd.http.errors import register_error_handlers
from chatd.http.routes_chat import chat_routes
from chatd.http.routes_health import health_routes
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
    register_error_handlers(app)
    return app
