"""`chatd n8n-check`, the I/O half: one test delivery, posted as chatd's sender posts (no
redirects, n8n's timeouts, the environment's proxy), keeping each error's cause to explain it."""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping

import httpx
import trio

from chatd.core.tokens import new_id
from chatd.errors import ConfigError
from chatd.n8n.check import Outcome, check_request, explain_answer, explain_failure
from chatd.queue.sender import proxy_for
from chatd.settings import N8nSettings, Settings, check_http_url


def run_check(settings: Settings, url: str | None) -> int:
    target = url or settings.n8n.webhook_url
    if not target:
        raise ConfigError(
            "n8n.webhook_url is not set (chatd answers with its demo bot): set it, or give --url"
        )
    try:
        check_http_url(target)
    except ValueError as exc:
        raise ConfigError(f"--url: {exc}") from None
    outcome = trio.run(check_n8n, settings, target)
    print(f"chatd n8n-check: POST {target}")
    for line in outcome.lines:
        print(f"  {line}")
    return 0 if outcome.ok else 1


async def check_n8n(settings: Settings, url: str) -> Outcome:
    """Send one signed test delivery to `url` and say what its answer means."""
    n8n = settings.n8n
    body, headers = check_request(
        delivery_id=new_id(),
        session_id=new_id(),
        now=time.time(),
        callback_url=f"{settings.public_url}/api/chat/webhook",
        mode=n8n.mode,
        secrets=n8n.secrets,
    )
    answer = await _post(url, body, headers, n8n)
    if isinstance(answer, str):
        return explain_failure(answer, url, n8n.timeout_seconds)
    status, response_headers, response_body = answer
    return explain_answer(
        status,
        response_headers,
        response_body,
        url=url,
        mode=n8n.mode,
        max_reply_length=n8n.max_reply_length,
    )


async def _post(
    url: str, body: bytes, headers: Mapping[str, str], n8n: N8nSettings
) -> tuple[int, Mapping[str, str], bytes] | str:
    """(status, headers, the body's first max_response_bytes), or what went wrong."""
    timeout = httpx.Timeout(n8n.timeout_seconds, connect=n8n.connect_timeout_seconds)
    client = httpx.AsyncClient(timeout=timeout, proxy=proxy_for(url), trust_env=False)
    try:
        with trio.fail_after(n8n.timeout_seconds):
            async with client, client.stream("POST", url, content=body, headers=headers) as got:
                kept = b""
                async for chunk in got.aiter_bytes():
                    kept = (kept + chunk)[: n8n.max_response_bytes]
                return got.status_code, got.headers, kept
    except (trio.TooSlowError, httpx.TimeoutException):
        return f"timeout after {n8n.timeout_seconds:g}s"
    except httpx.HTTPError as exc:
        return _reason(exc)


def _reason(exc: BaseException) -> str:
    """The most telling message down the cause chain (httpx's own is often empty)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for error in chain:
        if isinstance(error, ssl.SSLError):
            return f"SSL: {error.reason or error}"
    return next((str(e) for e in reversed(chain) if str(e)), type(exc).__name__)
