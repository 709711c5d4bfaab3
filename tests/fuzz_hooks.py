"""Schemathesis hooks for tests/integration/test_openapi_fuzz.py, loaded by the fuzzer's own
process (SCHEMATHESIS_HOOKS=tests.fuzz_hooks): chatd's error shape as a check, and n8n's
signature on the callbacks it sends, so they get past verification into the parser.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response

from tests.sink import sign

_CALLBACK = "/api/chat/webhook"


@schemathesis.check
def chatd_error_shape(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx and 5xx is JSON {"error": {"code", "message", "field"?}} and nothing else."""
    if response.status_code < 400:
        return None
    media = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    if media != "application/json":
        raise AssertionError(f"a {response.status_code} answered {media!r}, not application/json")
    body = json.loads(response.content)
    if not isinstance(body, dict) or set(body) != {"error"}:
        raise AssertionError(f"the error body is not {{'error': ...}}: {body!r}")
    error = body["error"]
    if not isinstance(error, dict) or not {"code", "message"} <= set(error) <= {
        "code",
        "message",
        "field",
    }:
        raise AssertionError(f"the error is not {{code, message, field?}}: {error!r}")
    if not (error["code"] and error["message"]) or not all(
        isinstance(value, str) for value in error.values()
    ):
        raise AssertionError(f"code and message must be non-empty strings: {error!r}")
    return True


@schemathesis.hook
def before_call(ctx: Any, case: Case, kwargs: dict[str, Any]) -> None:
    """Sign most callbacks over the exact bytes sent (the rest keep what the fuzzer made)."""
    secret = os.environ["CHATD_FUZZ_WEBHOOK_SECRET"]
    if case.operation.path != _CALLBACK or case.body is None or case.media_type is None:
        return
    if "json" not in case.media_type or hash(json.dumps(case.body, default=str)) % 8 == 0:
        return
    try:
        raw = json.dumps(case.body).encode()
    except (TypeError, ValueError):  # not JSON-serializable: left as the fuzzer made it
        return
    kwargs["data"] = raw
    case.headers = {**(case.headers or {}), **sign(raw, secret, "hex")}
