"""Schemathesis fuzzes chatd through its own OpenAPI document: a real chatd (this test's
nursery), a real session with its token and the admin token, so authorized paths are reached.

No answer may be a 5xx, every 4xx must be chatd's JSON error, and every answer must match the
document (status, content type, schema). The fuzzer runs as its own process (it is synchronous
and uses requests); its hooks are in tests/fuzz_hooks.py. Bounded by FUZZ_EXAMPLES per
operation and FUZZ_SECONDS in all; CHATD_FUZZ_EXAMPLES raises the first for a longer hunt.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from chatd.db.pool import PoolConfig, open_pool
from tests.chat import new_session, send
from tests.conftest import RunningChatd, make_settings, start_chatd

ADMIN_TOKEN = "admin-token-for-the-fuzzer-0123456789abcdef"
WEBHOOK_SECRET = "webhook-secret-for-the-fuzzer-0123456789"
FUZZ_EXAMPLES = int(os.environ.get("CHATD_FUZZ_EXAMPLES", "25"))
FUZZ_SECONDS = int(os.environ.get("CHATD_FUZZ_SECONDS", "90"))
REPO = Path(__file__).resolve().parents[2]

# Operations the fuzzer reaches with the real session (sometimes: `probability`), so it gets
# past authorization. Not the event stream: an authorized one stays open for as long as the
# client does, which a fuzzer's request never ends.
SESSION_OPERATIONS = [
    "/api/chat/session/{sessionId}",
    "/api/chat/messages/{sessionId}",
    "/api/chat/send",
    "/api/chat/upload",
    "/api/chat/webhook",
    "/api/admin/sessions/{sessionId}/transcript",
]


@pytest.fixture
async def fuzzed(nursery: trio.Nursery, database_url: str) -> AsyncIterator[RunningChatd]:
    settings = make_settings(
        database_url,
        admin={"token": ADMIN_TOKEN},
        n8n={"webhook_url": "http://127.0.0.1:9/webhook", "webhook_secret": WEBHOOK_SECRET},
        # Sessions keep their per-address limit (60 a minute): each one is another recipient of
        # every fuzzed broadcast, and thousands make one broadcast take longer than a request may.
        chat={"rate_limit_max": 100_000},
        server={"operator_auth_failures_max": 100_000},
        websocket={"long_poll_max_wait_seconds": 0.2},
    )
    async with open_pool(PoolConfig(settings.database.url)) as pool:
        chatd = await start_chatd(nursery, settings, pool)
        yield chatd
        chatd.stop.set()


def config_toml(chatd: RunningChatd, session_id: str, token: str, message_id: str) -> str:
    operations = "".join(
        f"""
[[operations]]
include-path = "{path}"
parameters = {{ "path.sessionId" = {{ dictionary = "session", probability = 0.6 }},\
 "body.sessionId" = {{ dictionary = "session", probability = 0.6 }},\
 "body.replyTo" = {{ dictionary = "message", probability = 0.5 }} }}
"""
        for path in SESSION_OPERATIONS
    )
    return f"""
base-url = "{chatd.url}"
max-time = {FUZZ_SECONDS}
workers = 1  # hypothesis describes strategies with ast.parse, which CPython 3.11 breaks in threads
seed = 20240601
request-timeout = 20
hooks = "tests.fuzz_hooks"
# One connection per request: the fuzzer stops reading an event stream after a few events, and
# a connection handed back with the rest unread must not carry the next request.
headers = {{ Connection = "close" }}

[generation]
max-examples = {FUZZ_EXAMPLES}

[checks]
# A valid-looking request may still be refused for what the schema cannot say (a random
# session id is nobody's, a token is wrong, a rate limit): 4xx is the right answer there.
positive_data_acceptance.enabled = false
# DELETE /api/admin/dead/<jobId> also matches /api/admin/dead/purge (a 400: not an id), so an
# OPTIONS there rightly lists DELETE beside POST; the document cannot say one path is both.
allow_header_conformance.enabled = false

[dictionaries.session]
values = [{json.dumps(session_id)}]

[dictionaries.message]
values = [{json.dumps(message_id)}]

[auth.openapi.sessionToken]
bearer = {json.dumps(token)}

[auth.openapi.adminToken]
bearer = {json.dumps(ADMIN_TOKEN)}
{operations}"""


@pytest.mark.timeout(FUZZ_SECONDS + 120)
async def test_the_fuzzer_finds_no_server_error_and_only_chatd_errors(
    fuzzed: RunningChatd, tmp_path: Path
) -> None:
    async with fuzzed.client() as client:
        session = await new_session(client, metadata={"page": "/cart"})
        message_id = (await send(client, session, "hello")).json()["messageId"]
    config = tmp_path / "schemathesis.toml"
    config.write_text(config_toml(fuzzed, session.id, session.token, message_id))
    junit = tmp_path / "junit.xml"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CHATD_FUZZ_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "NO_COLOR": "1",
    }
    started = time.monotonic()
    result = await trio.run_process(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{fuzzed.url}/api/openapi.json",
            "--report",
            "junit",
            "--report-junit-path",
            str(junit),
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    output = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
    if os.environ.get("CHATD_FUZZ_OUTPUT"):  # the whole report, for a longer hunt
        await trio.Path(os.environ["CHATD_FUZZ_OUTPUT"]).write_text(output)
    summary = [line for line in output.splitlines() if "passed" in line or "failed" in line]
    print(f"schemathesis: {elapsed:.0f} s; {summary[-1:] if summary else output[-500:]}")
    assert result.returncode == 0, output[-20000:]
    assert "API Operations" in output or "operations" in output.lower()
