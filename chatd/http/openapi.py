"""GET /api/openapi.json: the OpenAPI 3.1 document of the HTTP API this process serves.

Built from the app itself: every registered route carries a `Doc` (the `documented` decorator)
naming the pydantic models it parses and answers with, so the document cannot drift from the
code, and a route without one fails the build (and the test that builds it). Served without
authentication: it describes the API, holds no data, and is the same for everyone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from quart import Blueprint, Response, current_app
from quart_trio import QuartTrio
from werkzeug.routing import Rule

from chatd.core.ids import ID_PATTERN
from chatd.core.responses import ErrorBody

OPENAPI_PATH = "/api/openapi.json"
Auth = Literal["session", "admin", "metrics", "signature", "staff"]
F = TypeVar("F", bound=Callable[..., Any])

_SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "sessionToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The sessionToken that POST /api/chat/session returned.",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "admin.token from chatd's configuration (no token set: 404, closed).",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "metrics.token, when one is set; otherwise /metrics is open.",
    },
    "staffCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "chatd_staff",
        "description": "Set by POST /api/staff/sign-in; state-changing calls also need the"
        " X-CSRF-Token header (the csrfToken sign-in and GET /api/staff/me return).",
    },
    "webhookSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Webhook-Signature",
        "description": "Hex HMAC-SHA256 of the raw body under n8n.webhook_secret; or the"
        " Standard Webhooks headers webhook-id, webhook-timestamp and webhook-signature.",
    },
}
_SECURITY: dict[Auth, list[dict[str, list[str]]]] = {
    "session": [{"sessionToken": []}],
    "admin": [{"adminToken": []}],
    "metrics": [{"metricsToken": []}, {}],
    "signature": [{"webhookSignature": []}],
    "staff": [{"staffCookie": []}],
}
# Path parts, by the name a route gives them: what the document calls them and their schema.
_ID_SCHEMA = {"type": "string", "format": "uuid", "pattern": ID_PATTERN}
_PATH_PARAMETERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "session_id": ("sessionId", "The session's id (UUID text; either case).", _ID_SCHEMA),
    "job_id": ("jobId", "The dead letter's job id (UUID text; either case).", _ID_SCHEMA),
    "tag": (
        "tag",
        "A tag; stored in its normal form (chatd/core/tags.py), e.g. 'Refund request' as"
        " 'refund-request'.",
        {"type": "string", "minLength": 1, "maxLength": 200},
    ),
    "attachment_id": (
        "attachmentId",
        "The file's attachment id (UUID text; either case).",
        _ID_SCHEMA,
    ),
    "canned_id": ("cannedId", "The canned response's id (UUID text; either case).", _ID_SCHEMA),
}
_MEDIA_SCHEMAS: dict[str, dict[str, Any]] = {
    # One event of the stream: the fields of the WebSocket's events (chatd/PROTOCOL.md).
    "text/event-stream": {
        "type": "object",
        "properties": {
            "event": {"type": "string"},
            "data": {"type": "string"},
            "id": {"type": "string", "pattern": "^[0-9]+$"},
        },
    },
    "application/json": {"type": "object"},
}
# Request headers a Doc may name, with what they hold.
_HEADER_SCHEMAS: dict[str, dict[str, Any]] = {
    # Empty is allowed: resume_seq (routes_events.py) reads it as absent.
    "Last-Event-ID": {"type": "string", "pattern": "^[0-9]{0,19}$"},
}
_REASONS = {
    200: "OK",
    201: "Created",
    206: "Partial Content: the Range asked for",
    101: "Switching Protocols: a WebSocket (frames in chatd/PROTOCOL.md)",
    304: "Not Modified (If-None-Match matched the ETag)",
    503: "Unavailable: the database, a full mailbox or a restarting actor; retry after Retry-After",
}


@dataclass(frozen=True)
class Doc:
    """What the document says about one route: `answer` is its success body, a model (JSON) or
    a media type; `media` lists further media types it may answer with instead; `also` adds
    other statuses, each with a model (its JSON body) or a description (no body)."""

    summary: str
    tag: str
    answer: type[BaseModel] | str | None = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    auth: Auth | None = None
    headers: dict[str, str] = field(default_factory=dict)  # request header -> description
    media: tuple[str, ...] = ()
    also: dict[int, type[BaseModel] | str] = field(default_factory=dict)
    description: str = ""
    status: int = 200  # of the success answer
    body_media: str = "application/json"  # how `body` is sent (multipart/form-data: a form)
    form: type[BaseModel] | None = None  # the body may be this multipart/form-data form instead


def documented(doc: Doc) -> Callable[[F], F]:
    """Attach `doc` to a route's view function (put it under the route decorator)."""

    def mark(view: F) -> F:
        view.openapi = doc  # type: ignore[attr-defined]
        return view

    return mark


class Undocumented(LookupError):
    """A registered route has no Doc: add one with @documented."""


def openapi_document(app: QuartTrio) -> dict[str, Any]:
    operations: list[tuple[str, str, Rule, Doc]] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        doc = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if not isinstance(doc, Doc):
            raise Undocumented(f"route {rule.rule} ({rule.endpoint}) has no OpenAPI Doc")
        methods = {"GET"} if rule.websocket else set(rule.methods or ()) - {"HEAD", "OPTIONS"}
        operations += [(openapi_path(rule.rule), method.lower(), rule, doc) for method in methods]
    refs, components = _schemas([doc for *_, doc in operations])
    paths: dict[str, dict[str, Any]] = {}
    for path, method, rule, doc in sorted(operations, key=lambda op: op[:2]):
        paths.setdefault(path, {})[method] = _operation(rule, doc, refs, method)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chatd",
            "version": _version(),
            "description": "The chat back end's HTTP API: sessions and messages for the widget,"
            " n8n's callback, health, metrics and the admin API. WebSocket frames and SSE events"
            " are described in chatd/PROTOCOL.md. Every 4xx and 503 answer is a JSON ErrorBody.",
        },
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": _SECURITY_SCHEMES},
    }


def openapi_path(rule: str) -> str:
    """`/api/chat/session/<session_id>` as `/api/chat/session/{sessionId}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: "{" + _path_name(m.group(1)) + "}", rule)


def _path_name(argument: str) -> str:
    if argument not in _PATH_PARAMETERS:
        raise Undocumented(f"path part <{argument}> is not in chatd.http.openapi._PATH_PARAMETERS")
    return _PATH_PARAMETERS[argument][0]


def _schemas(
    docs: list[Doc],
) -> tuple[dict[tuple[type[BaseModel], JsonSchemaMode], Any], dict[str, Any]]:
    wanted: set[tuple[type[BaseModel], JsonSchemaMode]] = {(ErrorBody, "serialization")}
    for doc in docs:
        wanted |= {(m, "validation") for m in (doc.body, doc.query, doc.form) if m is not None}
        for answer in (doc.answer, *doc.also.values()):
            if isinstance(answer, type):
                wanted.add((answer, "serialization"))
    ordered = sorted(wanted, key=lambda item: (item[0].__name__, item[1]))
    found, top = models_json_schema(ordered, ref_template="#/components/schemas/{model}")
    refs = {(model, mode): found[(model, mode)] for model, mode in ordered}
    return refs, dict(top.get("$defs", {}))


def _operation(
    rule: Rule, doc: Doc, refs: dict[tuple[type[BaseModel], JsonSchemaMode], Any], method: str
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{rule.endpoint}.{method}" if method != "get" else rule.endpoint,
        "summary": doc.summary,
        "tags": [doc.tag],
    }
    if doc.description:
        operation["description"] = doc.description
    parameters = [_path_parameter(arg) for arg in sorted(rule.arguments)]
    if doc.query is not None:
        parameters += _query_parameters(doc.query)
    parameters += [
        {
            "name": name,
            "in": "header",
            "required": False,
            "description": text,
            "schema": _HEADER_SCHEMAS.get(name, {"type": "string"}),
        }
        for name, text in doc.headers.items()
    ]
    if parameters:
        operation["parameters"] = parameters
    if doc.body is not None:
        schema = refs[(doc.body, "validation")]
        content = {doc.body_media: {"schema": schema}}
        if doc.form is not None:
            content["multipart/form-data"] = {"schema": refs[(doc.form, "validation")]}
        operation["requestBody"] = {"required": True, "content": content}
    operation["security"] = _SECURITY[doc.auth] if doc.auth else []
    operation["responses"] = _responses(rule, doc, refs)
    return operation


def _path_parameter(argument: str) -> dict[str, Any]:
    name, description, schema = _PATH_PARAMETERS[argument]
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema["properties"].items():
        prop = {k: v for k, v in prop.items() if k not in ("title", "description")}
        parameter = {"name": name, "in": "query", "required": name in required, "schema": prop}
        description = model.model_fields[name].description
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _responses(
    rule: Rule, doc: Doc, refs: dict[tuple[type[BaseModel], JsonSchemaMode], Any]
) -> dict[str, Any]:
    def json_body(model: type[BaseModel]) -> dict[str, Any]:
        return {"application/json": {"schema": refs[(model, "serialization")]}}

    status = 101 if rule.websocket else doc.status
    success: dict[str, Any] = {"description": _REASONS[status]}
    content: dict[str, Any] = {}
    if isinstance(doc.answer, type):
        content |= json_body(doc.answer)
    for media in (doc.answer, *doc.media) if isinstance(doc.answer, str) else doc.media:
        content[media] = {"schema": _MEDIA_SCHEMAS.get(media, {"type": "string"})}
    if content:
        success["content"] = content
    error = {
        "description": "A refusal: a stable code, a message, and the field at fault if any.",
        "content": json_body(ErrorBody),
    }
    responses: dict[str, Any] = {str(status): success, "4XX": error, "503": error}
    for code, answer in doc.also.items():
        if isinstance(answer, type):
            responses[str(code)] = {
                "description": _REASONS.get(code, "See the body"),
                "content": json_body(answer),
            }
        else:
            responses[str(code)] = {"description": answer}
    return responses


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chatd")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0"


def openapi_routes() -> Blueprint:
    bp = Blueprint("openapi", __name__)
    built: list[bytes] = []

    @bp.get(OPENAPI_PATH)
    @documented(Doc("This document; served without authentication", "meta", "application/json"))
    async def openapi() -> Response:
        if not built:  # built on first use: every blueprint is registered by then
            document = openapi_document(current_app)  # type: ignore[arg-type]
            built.append(json.dumps(document, ensure_ascii=False).encode())
        return Response(built[0], content_type="application/json")

    return bp
