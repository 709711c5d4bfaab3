"""`chatd n8n-check` against the real test sink playing n8n, one failure injected at a time."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import trio

from chatd.cli.n8n_check import check_n8n
from chatd.core.signing import verify_callback
from chatd.settings import Settings
from tests.sink import Ack, Hold, Reply, Sink, Status

SECRET = "n8n-check-secret-0123456789abcdef"


def settings_for(url: str, **n8n: object) -> Settings:
    return Settings.model_validate(
        {
            "server": {"public_url": "https://chat.shop.example"},
            "n8n": {"webhook_url": url, "webhook_secret": SECRET, **n8n},
        }
    )


async def test_a_reply_is_shown_and_the_request_is_a_signed_delivery(
    nursery: trio.Nursery,
) -> None:
    sink = await Sink.start(nursery)
    sink.behave(Reply("Hello from the workflow"))
    outcome = await check_n8n(settings_for(sink.webhook_url), sink.webhook_url)
    assert outcome.ok
    assert outcome.lines == ["n8n answered 200 with a reply (text):", "Hello from the workflow"]
    (request,) = sink.requests
    assert request.headers["x-webhook-secret"] == SECRET
    assert verify_callback(request.headers, request.body, [SECRET], now=time.time()) == "standard"
    body = request.json
    assert body["sessionMetadata"] == {"chatdCheck": True}
    assert body["callbackUrl"] == "https://chat.shop.example/api/chat/webhook"
    assert body["deliveryId"] == request.headers["webhook-id"]
    assert set(body) >= {"sessionId", "messageId", "message", "userContext"}
    assert body["message"]["content"].startswith("chatd n8n-check")


async def test_chat_trigger_mode_sends_the_chat_trigger_shape(nursery: trio.Nursery) -> None:
    sink = await Sink.start(nursery)
    settings = settings_for(sink.webhook_url, mode="chat_trigger")
    assert (await check_n8n(settings, sink.webhook_url)).ok
    body = sink.requests[0].json
    assert body["action"] == "sendMessage"
    assert body["metadata"]["sessionMetadata"] == {"chatdCheck": True}


async def test_each_answer_is_said_in_words(nursery: trio.Nursery) -> None:
    sink = await Sink.start(nursery)
    settings = settings_for(sink.webhook_url, timeout_seconds=0.5)
    cases = [
        (
            Ack(202, b'{"message":"Workflow was started"}'),
            True,
            "without a reply: fine in callback",
        ),
        (Status(404, b'{"code":404}'), False, "the workflow is not active"),
        (Status(403), False, "n8n.webhook_secret must match the Webhook node's Header Auth"),
        (Status(401), False, "the secret is wrong"),
        (Status(500, b'{"message":"Error in workflow"}'), False, "the workflow failed"),
        (Status(302, headers={"Location": "https://n8n.example/x"}), False, "does not follow"),
        (Reply("x" * 5000), False, "chatd cannot use the reply"),
        (Hold(), False, "no answer from"),
    ]
    for behaviour, ok, words in cases:
        sink.queue(behaviour)
        outcome = await check_n8n(settings, sink.webhook_url)
        assert outcome.ok is ok, (behaviour, outcome)
        assert words in " ".join(outcome.lines), (behaviour, outcome)
    sink.release()


async def test_refused_connections_and_tls_to_a_plain_port(nursery: trio.Nursery) -> None:
    sink = await Sink.start(nursery)
    tls = sink.webhook_url.replace("http://", "https://")
    outcome = await check_n8n(settings_for(tls), tls)
    assert not outcome.ok
    assert outcome.lines[0].startswith(f"TLS failed with {tls}")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/webhook/chatd"
        outcome = await check_n8n(settings_for(url), url)
    assert not outcome.ok
    assert outcome.lines[0].startswith(f"cannot connect to {url}")
    assert outcome.lines[1] == "Is n8n running, and are the host and port in n8n.webhook_url right?"


async def test_the_command_exits_0_on_success_and_1_otherwise(
    nursery: trio.Nursery, repo_root: Path
) -> None:
    sink = await Sink.start(nursery)
    sink.behave(Reply("pong"))

    async def n8n_check(*extra: str) -> subprocess.CompletedProcess[bytes]:
        return await trio.run_process(
            [sys.executable, "-m", "chatd", "n8n-check", *extra],
            cwd=repo_root,
            env={
                "PATH": "/usr/bin:/bin",
                "CHATD_N8N__WEBHOOK_URL": sink.webhook_url,
                "CHATD_N8N__WEBHOOK_SECRET": SECRET,
            },
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )

    ok = await n8n_check()
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.decode().splitlines() == [
        f"chatd n8n-check: POST {sink.webhook_url}",
        "  n8n answered 200 with a reply (text):",
        "  pong",
    ]
    sink.behave(Status(404))
    missing = await n8n_check("--url", f"{sink.url}/webhook-test/chatd")
    assert missing.returncode == 1
    assert "activate the workflow" in missing.stdout.decode()
    assert sink.requests[-1].path == "/webhook-test/chatd"


async def test_a_bad_webhook_url_is_refused_at_startup_naming_the_key(repo_root: Path) -> None:
    for url in ("not a url", "ftp://n8n.example/webhook/x", "localhost:5678/webhook/x"):
        result = await trio.run_process(
            [sys.executable, "-m", "chatd", "serve"],
            cwd=repo_root,
            env={"PATH": "/usr/bin:/bin", "CHAT_N8N_WEBHOOK_URL": url},
            capture_stderr=True,
            check=False,
        )
        assert result.returncode == 2
        assert result.stderr.decode().splitlines() == [
            "chatd: configuration error:",
            "chatd: environment CHAT_N8N_WEBHOOK_URL: not an http:// or https:// URL with a host,"
            f" e.g. https://n8n.example/webhook/chatd (got {url!r})",
        ]
