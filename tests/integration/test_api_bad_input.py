"""Every bad input gets a 4xx with a JSON error naming the problem, and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.chat import Session, new_session, table_counts
from tests.conftest import RunningChatd

LONG = "x" * 1001
DEEP = {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}  # 6 levels; the limit is 5
BIG_META = {"k": "v" * 5000}

# (name, body as raw bytes or JSON value, content type, status, error code, field)
SEND_CASES: list[tuple[str, Any, str, int, str, str | None]] = [
    ("malformed json", b'{"sessionId": ', "application/json", 400, "invalid_json", None),
    ("not utf-8", b'{"content": "\xff"}', "application/json", 400, "invalid_json", None),
    ("empty body", b"", "application/json", 400, "invalid_json", None),
    ("json array", [], "application/json", 400, "invalid_body", None),
    (
        "NaN",
        b'{"sessionId": "S", "content": "hi", "metadata": {"x": NaN}}',
        "application/json",
        400,
        "invalid_json",
        None,
    ),
    (
        "wrong content type",
        b'{"sessionId": "S", "content": "hi"}',
        "text/plain",
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "form content type",
        b"sessionId=S&content=hi",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "unknown field",
        {"content": "hi", "extra": 1},
        "application/json",
        400,
        "unknown_field",
        "extra",
    ),
    ("missing content", {}, "application/json", 400, "missing_field", "content"),
    ("content not a string", {"content": 5}, "application/json", 400, "invalid_field", "content"),
    ("empty content", {"content": ""}, "application/json", 400, "empty_content", "content"),
    (
        "whitespace content",
        {"content": " \n\t "},
        "application/json",
        400,
        "empty_content",
        "content",
    ),
    ("content too long", {"content": LONG}, "application/json", 400, "content_too_long", "content"),
    (
        "NUL in content",
        {"content": "a\u0000b"},
        "application/json",
        400,
        "invalid_characters",
        "content",
    ),
    (
        "lone surrogate",
        b'{"sessionId": "S", "content": "a\\ud800b"}',
        "application/json",
        400,
        "invalid_characters",
        "content",
    ),
    (
        "lone surrogate in metadata key",
        b'{"sessionId": "S", "content": "hi", "metadata": {"\\udc00": 1}}',
        "application/json",
        400,
        "invalid_characters",
        None,
    ),
    (
        "bad messageType",
        {"content": "hi", "messageType": "rich_content"},
        "application/json",
        400,
        "invalid_field",
        "messageType",
    ),
    (
        "metadata not an object",
        {"content": "hi", "metadata": [1]},
        "application/json",
        400,
        "invalid_field",
        "metadata",
    ),
    (
        "metadata too large",
        {"content": "hi", "metadata": BIG_META},
        "application/json",
        400,
        "metadata_too_large",
        "metadata",
    ),
    (
        "metadata too deep",
        {"content": "hi", "metadata": DEEP},
        "application/json",
        400,
        "metadata_too_deep",
        "metadata",
    ),
    (
        "json nested 100k deep",
        b'{"content": "hi", "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "application/json",
        413,
        "payload_too_large",
        None,
    ),
    (
        "json nested 40 deep",
        b'{"content": "hi", "metadata": ' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"}",
        "application/json",
        400,
        "too_deep",
        None,
    ),
    (
        "bad clientMessageId",
        {"content": "hi", "clientMessageId": "has space"},
        "application/json",
        400,
        "invalid_field",
        "clientMessageId",
    ),
    (
        "sessionId not an id",
        b'{"sessionId": "no-such-session", "content": "hi"}',
        "application/json",
        400,
        "invalid_id",
        "sessionId",
    ),
    (
        "NUL in sessionId",
        b'{"sessionId": "S\\u0000", "content": "hi"}',
        "application/json",
        400,
        "invalid_characters",
        "sessionId",
    ),
    (
        "NUL in clientMessageId",
        {"content": "hi", "clientMessageId": "c\u0000"},
        "application/json",
        400,
        "invalid_characters",
        "clientMessageId",
    ),
    (
        "NUL in a metadata key",
        {"content": "hi", "metadata": {"a\u0000": 1}},
        "application/json",
        400,
        "invalid_characters",
        "metadata",
    ),
    (
        "body over the limit",
        {"content": "hi", "metadata": {"k": "v" * 70_000}},
        "application/json",
        413,
        "payload_too_large",
        None,
    ),
]


def _encode(body: Any, session: Session) -> bytes:
    if isinstance(body, bytes):
        return body.replace(b'"S"', json.dumps(session.id).encode())
    if isinstance(body, dict):
        body = {"sessionId": session.id, **body}
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("name", "body", "ctype", "status", "code", "field"), SEND_CASES, ids=[c[0] for c in SEND_CASES]
)
async def test_bad_send_is_refused_and_changes_nothing(
    chatd: RunningChatd,
    name: str,
    body: Any,
    ctype: str,
    status: int,
    code: str,
    field: str | None,
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        before = await table_counts(chatd.services.pool)
        response = await client.post(
            "/api/chat/send",
            content=_encode(body, session),
            headers={**session.auth, "Content-Type": ctype},
        )
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["code"] == code
        assert error["message"]
        if field is not None:
            assert error["field"] == field
        assert await table_counts(chatd.services.pool) == before


SESSION_CASES: list[tuple[str, Any, int, str, str | None]] = [
    ("invalid guestEmail", {"guestEmail": "not-an-email"}, 400, "invalid_field", "guestEmail"),
    ("guestEmail not a string", {"guestEmail": 1}, 400, "invalid_field", "guestEmail"),
    ("unknown field", {"user": "x"}, 400, "unknown_field", "user"),
    ("unproven userId", {"userId": "u1"}, 401, "identity_not_configured", None),
    ("metadata too deep", {"metadata": DEEP}, 400, "metadata_too_deep", "metadata"),
    ("metadata too large", {"metadata": BIG_META}, 400, "metadata_too_large", "metadata"),
    ("bad userHash", {"userId": "u1", "userHash": "zz"}, 400, "invalid_field", "userHash"),
    ("NUL in metadata", {"metadata": {"a": "\u0000"}}, 400, "invalid_characters", "metadata.a"),
    ("NUL in userId", {"userId": "u\u0000"}, 400, "invalid_characters", "userId"),
    ("NUL in guestEmail", {"guestEmail": "a\u0000@b.co"}, 400, "invalid_characters", "guestEmail"),
    (
        "NUL in identityToken",
        {"identityToken": "\u0000"},
        400,
        "invalid_characters",
        "identityToken",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "status", "code", "field"), SESSION_CASES, ids=[c[0] for c in SESSION_CASES]
)
async def test_bad_session_request_is_refused_and_changes_nothing(
    chatd: RunningChatd, name: str, body: Any, status: int, code: str, field: str | None
) -> None:
    async with chatd.client() as client:
        before = await table_counts(chatd.services.pool)
        response = await client.post("/api/chat/session", json=body)
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert (error["code"], error.get("field")) == (code, field)
        assert await table_counts(chatd.services.pool) == before


@pytest.mark.parametrize(
    "query",
    [
        "page=-1",
        "page=0",
        "page=abc",
        "page=1.5",
        "page=100001",
        "page=99999999999999999999",
        "limit=0",
        "limit=-5",
        "limit=101",
        "limit=1e3",
        "limit=",
        "afterSeq=-1",
        "afterSeq=x",
        "afterSeq=5&page=2",
        "sort=desc",
        "page=%00",
        "afterSeq=1%00",
        "wait=%00",
    ],
)
async def test_bad_pagination_is_a_400_naming_the_parameter(
    chatd: RunningChatd, query: str
) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        response = await client.get(
            f"/api/chat/messages/{session.id}?{query}", headers=session.auth
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] in {"invalid_query", "unknown_field"}
        assert error["field"] == query.split("=")[0] if "&" not in query else "afterSeq"


async def test_unknown_routes_and_methods_answer_json(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        missing = await client.get("/api/chat/nothing-here")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        wrong_method = await client.get("/api/chat/send")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"]["code"] == "method_not_allowed"
        # RFC 9110: a 405 lists the methods the URL has (the fuzzer found it missing).
        assert wrong_method.headers["Allow"] == "OPTIONS, POST"
        trace = await client.request("TRACE", "/api/chat/health")
        assert (trace.status_code, trace.headers["Allow"]) == (405, "GET, HEAD, OPTIONS")


BAD_IDS = ["%00", "a%00b", "{id}%00", "no-such-session", "{id}x", "%F0%9F%98%80", "x" * 300]


@pytest.mark.parametrize("path", ["session", "messages", "events"])
@pytest.mark.parametrize("bad", BAD_IDS)
async def test_a_malformed_id_in_a_path_is_a_400_naming_it(
    chatd: RunningChatd, path: str, bad: str
) -> None:
    # Checked before any query: PostgreSQL refuses a NUL in text with an error (it was a 500).
    async with chatd.client() as client:
        session = await new_session(client)
        before = await table_counts(chatd.services.pool)
        for headers in (session.auth, {}):
            response = await client.get(
                f"/api/chat/{path}/{bad.format(id=session.id)}", headers=headers
            )
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert (error["code"], error["field"]) == ("invalid_id", "sessionId")
        assert await table_counts(chatd.services.pool) == before


@pytest.mark.parametrize("query", ["lastSeq=%00", "lastSeq=1%00", "other=%00"])
async def test_a_nul_in_the_events_query_is_a_400(chatd: RunningChatd, query: str) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        response = await client.get(f"/api/chat/events/{session.id}?{query}", headers=session.auth)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] in {"invalid_query", "unknown_field"}


async def test_an_uppercase_id_names_the_same_session(chatd: RunningChatd) -> None:
    async with chatd.client() as client:
        session = await new_session(client)
        response = await client.get(f"/api/chat/session/{session.id.upper()}", headers=session.auth)
        assert response.status_code == 200, response.text
        assert response.json()["sessionId"] == session.id
        sent = await client.post(
            "/api/chat/send",
            headers=session.auth,
            json={"sessionId": session.id.upper(), "content": "hi"},
        )
        assert sent.status_code == 200, sent.text
        listed = await client.get(f"/api/chat/messages/{session.id.upper()}", headers=session.auth)
        assert [m["sessionId"] for m in listed.json()["messages"]] == [session.id]
