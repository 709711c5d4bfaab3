"""The alert loop: every interval, the one chatd holding the "alerts" leader lock reads the
cluster's figures, evaluates the guide's rules and posts each firing whose cooldown has passed
to the alert webhook (Slack-compatible JSON), through one httpx client, each post under a deadline.

A firing is recorded in chat_alerts before it is posted: that record is what keeps every other
chatd quiet for the cooldown. A post that fails (refused, timed out, not 2xx) takes its record
back, so the next round fires again instead of the alert being lost for a whole cooldown. A
chatd that dies or is stopped between the record and the post loses that one post; its
`alert_fired` log line is written before the post.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

import httpx
import structlog
import trio

from chatd.db.alerts import claim_firing, read_figures, read_last_fired, unclaim_firing
from chatd.db.leader import leadership
from chatd.db.pool import Connection, Pool
from chatd.errors import ChatdError
from chatd.ops.alerts import Figures, Firing, due, evaluate, slack_payload
from chatd.settings import AlertSettings

log = structlog.get_logger(__name__)

LOCK_NAME = "alerts"

# posted: sent to the webhook; logged: no webhook_url, so only logged; post_failed: the post
# failed and the firing was taken back (it fires again next round); cooling_down: it fired less
# than a cooldown ago (here or in another chatd), so nothing was done.
Result = Literal["posted", "logged", "post_failed", "cooling_down"]


@dataclass(frozen=True)
class Outcome:
    rule: str
    value: float
    result: Result


@dataclass(frozen=True)
class Check:
    """What one round did. `leader` False: another chatd holds the lock; nothing was read."""

    leader: bool
    figures: Figures | None = None
    outcomes: tuple[Outcome, ...] = ()

    def results(self) -> dict[str, Result]:
        return {o.rule: o.result for o in self.outcomes}


async def run_alerts(
    pool: Pool,
    settings: Callable[[], AlertSettings],
    *,
    instance: str,
    client: httpx.AsyncClient | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Check the rules now and every `interval_seconds` after, until cancelled. A round that
    fails on the database is logged and the next round tries again. `settings` is read each
    round, so a reload (SIGHUP) applies from the next one."""
    async with _open_client(client, settings()) as http:
        task_status.started()
        while True:
            started = trio.current_time()
            config = settings()
            try:
                await check_alerts_once(pool, config, instance=instance, client=http)
            except ChatdError as exc:  # the database is away: the next round will tell
                log.warning("alert_check_failed", error=str(exc))
            await trio.sleep_until(started + config.interval_seconds)


async def check_alerts_once(
    pool: Pool,
    config: AlertSettings,
    *,
    instance: str,
    client: httpx.AsyncClient | None = None,
) -> Check:
    """One round, if this chatd wins the leader lock: figures, rules, cooldowns, posts.

    Without `client`, one is opened for the round when a rule fires. DatabaseUnavailable
    propagates (a failed un-record after a failed post included: that firing then stays
    recorded, and quiet for its cooldown)."""
    async with leadership(pool, LOCK_NAME) as conn:
        if conn is None:
            return Check(leader=False)
        figures = await read_figures(conn, config.window_seconds)
        firings = evaluate(figures, config)
        log.debug(
            "alert_check",
            attempts=figures.attempts,
            failed_attempts=figures.failed_attempts,
            queue_delay_seconds=figures.queue_delay_seconds,
            response_time_seconds=figures.response_time_seconds,
            firing=[f.rule.id for f in firings],
        )
        if not firings:
            return Check(True, figures)
        last_fired = await read_last_fired(conn)
        outcomes = []
        async with _open_client(client, config) as http:
            for firing in firings:
                previous = last_fired.get(firing.rule.id)
                if not due(firing, previous, figures.measured_at):
                    outcomes.append(Outcome(firing.rule.id, firing.value, "cooling_down"))
                    continue
                result = await _fire(conn, firing, config, instance, http)
                outcomes.append(Outcome(firing.rule.id, firing.value, result))
        return Check(True, figures, tuple(outcomes))


async def _fire(
    conn: Connection,
    firing: Firing,
    config: AlertSettings,
    instance: str,
    client: httpx.AsyncClient,
) -> Result:
    rule = firing.rule
    claim = await claim_firing(conn, rule.id, firing.value, rule.cooldown_seconds)
    if claim is None:  # another chatd recorded it since we looked
        return "cooling_down"
    payload = slack_payload(replace(firing, at=claim.fired_at), instance)
    log.warning(
        "alert_fired",
        alert=rule.id,
        severity=str(rule.severity),
        value=firing.value,
        threshold=rule.threshold,
        fired_count=claim.fired_count,
        text=payload["text"],
    )
    if not config.webhook_url:
        return "logged"
    try:
        with trio.fail_after(config.timeout_seconds):
            error = await post_alert(client, config.webhook_url, payload)
    except trio.TooSlowError:
        error = f"no answer within {config.timeout_seconds:g}s"
    if error is None:
        return "posted"
    log.warning("alert_post_failed", alert=rule.id, error=error)  # the URL holds a secret
    await unclaim_firing(conn, claim)
    return "post_failed"


async def post_alert(client: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> str | None:
    """POST `payload` as JSON without following redirects; None when the webhook answered 2xx,
    else what went wrong. The caller bounds it with a deadline."""
    try:
        response = await client.post(url, json=payload, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if response.is_success:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


@asynccontextmanager
async def _open_client(
    client: httpx.AsyncClient | None, config: AlertSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """The client given (the caller owns it), else one owned by the block."""
    if client is not None:
        yield client
        return
    async with httpx.AsyncClient(
        timeout=config.timeout_seconds,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=4, keepalive_expiry=5.0),
    ) as own:
        yield own
