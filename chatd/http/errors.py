"""The one place errors become HTTP responses: {"error": {"code", "message", "field"?}}."""

from __future__ import annotations

import structlog
from quart import Response, jsonify
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from chatd.core.responses import ErrorBody, ErrorDetail, wire
from chatd.errors import ClientError, DatabaseUnavailable

log = structlog.get_logger(__name__)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    response = jsonify(wire(ErrorBody(error=ErrorDetail(code=code, message=message))))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def register_error_handlers(app: QuartTrio) -> None:
    @app.errorhandler(ClientError)
    async def client_error(exc: ClientError) -> Response:
        response = jsonify(wire(ErrorBody.model_validate(exc.body())))  # the documented shape
        response.status_code = exc.status
        response.headers.update(exc.headers())
        return response

    @app.errorhandler(DatabaseUnavailable)
    async def database_unavailable(exc: DatabaseUnavailable) -> Response:
        log.warning("database_unavailable", error=str(exc))
        return error_response(
            503,
            "database_unavailable",
            "the database is unavailable; retry shortly",
            {"Retry-After": "5"},
        )

    @app.errorhandler(HTTPException)
    async def http_exception(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, (exc.name or "error").lower().replace(" ", "_"))
        # A 405 names the methods the URL has (RFC 9110 15.5.6); werkzeug knows them.
        methods = getattr(exc, "valid_methods", None)
        headers = {"Allow": ", ".join(sorted(methods))} if methods else None
        return error_response(status, code, exc.description or exc.name or "error", headers)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        log.exception("unhandled_error")
        return error_response(500, "internal_error", "internal error; it has been logged")
