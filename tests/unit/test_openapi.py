"""The OpenAPI document: built from the app's own routes and models, complete, and valid."""

from __future__ import annotations

from typing import Any

import pytest
from quart_trio import QuartTrio

from chatd.db.pool import Pool, PoolConfig
from chatd.http.asgi import create_app
from chatd.http.openapi import Doc, Undocumented, documented, openapi_document, openapi_path
from chatd.settings import load_settings
from chatd.wiring import build_services

URL = "postgresql://nobody@127.0.0.1:1/never"  # the pool is built, never opened


def app_for(**env: str) -> QuartTrio:
    settings = load_settings(None, {"CHATD_DATABASE__URL": URL, **env})
    return create_app(build_services(settings, Pool(PoolConfig(settings.database.url))))


APPS = {
    "demo": {},
    "n8n": {"CHATD_N8N__WEBHOOK_URL": "http://127.0.0.1:5678/webhook/chat"},
    "metrics apart": {"CHATD_METRICS__LISTEN": "127.0.0.1:0"},
}


@pytest.mark.parametrize("env", APPS.values(), ids=APPS.keys())
def test_every_registered_route_is_in_the_document(env: dict[str, str]) -> None:
    app = app_for(**env)
    document = openapi_document(app)
    registered = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in ({"GET"} if rule.websocket else (rule.methods or set()) - {"HEAD", "OPTIONS"})
    }
    documented_ops = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert documented_ops == registered
    assert len(registered) >= 25


def test_the_document_names_the_public_endpoints() -> None:
    paths = openapi_document(app_for())["paths"]
    for path in [
        "/api/chat/session",
        "/api/chat/session/{sessionId}",
        "/api/chat/send",
        "/api/chat/messages/{sessionId}",
        "/api/chat/events/{sessionId}",
        "/api/chat/webhook",
        "/api/chat/health",
        "/livez",
        "/readyz",
        "/metrics",
        "/api/admin/overview",
        "/api/admin/dead/{jobId}/retry",
        "/api/admin/sessions/{sessionId}/transcript",
        "/api/openapi.json",
    ]:
        assert path in paths, path


def test_a_route_without_a_doc_fails_the_build() -> None:
    app = app_for()

    @app.get("/api/chat/forgotten")
    async def forgotten() -> str:
        return "nobody wrote it down"

    with pytest.raises(Undocumented, match="/api/chat/forgotten"):
        openapi_document(app)


def test_an_unknown_path_part_fails_the_build() -> None:
    app = app_for()

    @app.get("/api/chat/thing/<thing_id>")
    @documented(Doc("a thing", "chat"))
    async def thing(thing_id: str) -> str:
        return thing_id

    with pytest.raises(Undocumented, match="thing_id"):
        openapi_document(app)


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"]} if isinstance(value.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value))
    return set()


def test_every_reference_resolves_and_bodies_come_from_the_models() -> None:
    document = openapi_document(app_for())
    schemas = document["components"]["schemas"]
    for ref in _refs(document):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    send = document["paths"]["/api/chat/send"]["post"]
    assert send["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SendMessageRequest"
    }
    assert schemas["SendMessageRequest"]["additionalProperties"] is False
    assert schemas["SendMessageRequest"]["properties"]["sessionId"]["format"] == "uuid"
    assert send["security"] == [{"sessionToken": []}]
    assert set(send["responses"]) == {"200", "4XX", "503"}
    error = schemas["ErrorDetail"]
    assert set(error["required"]) == {"code", "message"}
    n8n_chat = document["paths"]["/api/n8n-chat"]["post"]["requestBody"]["content"]
    assert n8n_chat["multipart/form-data"]["schema"] == {
        "$ref": "#/components/schemas/N8nChatFormBody"
    }  # @n8n/chat's allowFileUploads form
    files = schemas["N8nChatFormBody"]["properties"]["files"]
    assert files["items"] == {"format": "binary", "type": "string"}


def test_admin_operations_need_the_admin_token_and_open_ones_none() -> None:
    paths = openapi_document(app_for())["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            if path.startswith("/api/admin/"):
                assert operation["security"] == [{"adminToken": []}], (path, method)
    assert paths["/api/openapi.json"]["get"]["security"] == []
    assert paths["/livez"]["get"]["security"] == []
    messages = paths["/api/chat/messages/{sessionId}"]["get"]
    assert [p["name"] for p in messages["parameters"]] == [
        "sessionId",
        "page",
        "limit",
        "afterSeq",
        "wait",
        "streamVersion",
    ]
