"""The alerter against real PostgreSQL and a real local webhook: figures as defined, each rule
posted once per cooldown across the cluster, failed posts retried, the loop never dying."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from structlog.testing import capture_logs

from chatd.db.alerts import claim_firing, read_figures
from chatd.db.pool import Pool, PoolConfig, open_pool
from chatd.ops.alerter import check_alerts_once, run_alerts
from chatd.ops.alerts import FAILURE_RATE, QUEUE_DELAY, RESPONSE_TIME
from chatd.settings import AlertSettings, Settings
from tests.pg import with_dbname
from tests.sink import Received, Sink, Status

INSTANCE = "test-chatd"
RULE_IDS = (FAILURE_RATE, QUEUE_DELAY, RESPONSE_TIME)

# One session, message and job per row; times are seconds before now().
JOBS = """
WITH s AS (
    INSERT INTO chat_sessions (id, token_hash)
    SELECT %(prefix)s || n, '\\x00' FROM generate_series(1, %(n)s) n
 RETURNING id
), m AS (
    INSERT INTO chat_messages (id, session_id, sender_type, content, status, seq)
    SELECT id, id, 'user', 'hi', 'pending', 1 FROM s
 RETURNING id
)
INSERT INTO chat_webhook_queue (id, message_id, session_id, seq, webhook_url, payload, status,
                                attempts, next_retry_at, updated_at, completed_at)
SELECT id, id, id, 1, 'http://n8n.test', '{}', %(status)s, %(attempts)s,
       now() - make_interval(secs => %(waited)s), now() - make_interval(secs => %(ago)s),
       CASE WHEN %(status)s = 'completed' THEN now() - make_interval(secs => %(ago)s) END
  FROM m
"""

REPLY = """
WITH s AS (
    INSERT INTO chat_sessions (id, token_hash) VALUES (%(id)s, '\\x00') RETURNING id
), u AS (
    INSERT INTO chat_messages (id, session_id, sender_type, content, seq, created_at)
    SELECT id || '-u', id, 'user', 'hi', 1, now() - make_interval(secs => %(ago)s + %(took)s)
      FROM s
 RETURNING id, session_id
)
INSERT INTO chat_messages (id, session_id, sender_type, content, seq, reply_to, metadata,
                          created_at)
SELECT session_id || '-b', session_id, 'bot', 'hello', 2, id, %(metadata)s,
       now() - make_interval(secs => %(ago)s)
  FROM u
"""


class Seed:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.batches = 0

    async def jobs(
        self, n: int, status: str, attempts: int, *, ago: float = 1.0, waited: float = 0.0
    ) -> None:
        """n jobs in `status` with `attempts`, last touched `ago` s ago, due for `waited` s."""
        self.batches += 1
        params = {
            "prefix": f"b{self.batches}-",
            "n": n,
            "status": status,
            "attempts": attempts,
            "ago": ago,
            "waited": waited,
        }
        async with self.pool.connection() as conn:
            await conn.execute(JOBS, params)

    async def reply(self, took: float, *, ago: float = 1.0, fallback: bool = False) -> None:
        """A user message and the bot's reply `took` s later, stored `ago` s ago."""
        self.batches += 1
        metadata = '{"fallback": true}' if fallback else None
        params = {"id": f"r{self.batches}", "took": took, "ago": ago, "metadata": metadata}
        async with self.pool.connection() as conn:
            await conn.execute(REPLY, params)

    async def failing_webhook(self) -> None:  # 10 of 30 attempts failed
        await self.jobs(20, "completed", 1)
        await self.jobs(5, "completed", 2)

    async def stuck_queue(self) -> None:
        await self.jobs(1, "pending", 0, waited=45.0)

    async def slow_bot(self) -> None:
        await self.reply(8.0)
        await self.reply(6.0)

    async def all_rules(self) -> None:
        await self.failing_webhook()
        await self.stuck_queue()
        await self.slow_bot()


SEEDS = {
    FAILURE_RATE: Seed.failing_webhook,
    QUEUE_DELAY: Seed.stuck_queue,
    RESPONSE_TIME: Seed.slow_bot,
}


@pytest.fixture
def seed(pool: Pool) -> Seed:
    return Seed(pool)


@pytest.fixture
async def sink(nursery: trio.Nursery) -> AsyncIterator[Sink]:
    sink = await Sink.start(nursery)
    yield sink
    await sink.stop()


def alert_config(sink: Sink | None, cooldown: float = 600.0, **extra: Any) -> AlertSettings:
    keys: dict[str, Any] = {
        "webhook_url": f"{sink.url}/alerts" if sink else "",
        "timeout_seconds": 2.0,
        "failure_rate_cooldown_seconds": cooldown,
        "queue_delay_cooldown_seconds": cooldown,
        "response_time_cooldown_seconds": cooldown,
    }
    return AlertSettings(**(keys | extra))


async def alert_rows(pool: Pool) -> dict[str, dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT * FROM chat_alerts")
        return {row["rule"]: row for row in await cur.fetchall()}


def posted_ids(requests: list[Received]) -> list[str]:
    return [r.json["alert"]["id"] for r in requests]


async def test_figures_follow_their_definitions(pool: Pool, seed: Seed) -> None:
    await seed.jobs(10, "completed", 1)  # 10 tried, 0 failed
    await seed.jobs(2, "completed", 3)  # 6 tried, 4 failed
    await seed.jobs(1, "dead", 3)  # 3 tried, 3 failed
    await seed.jobs(1, "pending", 2, waited=-30.0)  # waiting to retry: 2 tried, 2 failed
    await seed.jobs(1, "processing", 2)  # 1 failed before, 1 in flight: 1 tried, 1 failed
    await seed.jobs(1, "processing", 1)  # first call in flight: nothing known yet
    await seed.jobs(3, "pending", 0, waited=12.0)  # due, never tried: only the queue delay
    await seed.jobs(1, "pending", 0, waited=-5.0)  # not due yet
    await seed.jobs(5, "completed", 2, ago=400.0)  # before the window
    await seed.jobs(5, "dead", 3, ago=400.0)
    await seed.reply(2.0)
    await seed.reply(4.0, fallback=True)  # the fallback counts: the shopper waited for it
    await seed.reply(30.0, ago=400.0)  # before the window
    async with pool.connection() as conn:
        figures = await read_figures(conn, 300.0)
    assert (figures.attempts, figures.failed_attempts) == (10 + 6 + 3 + 2 + 1, 4 + 3 + 2 + 1)
    assert figures.queue_delay_seconds == pytest.approx(12.0, abs=1.0)
    assert figures.replies == 2
    assert figures.response_time_seconds == pytest.approx(3.0)
    assert figures.window_seconds == 300.0


async def test_empty_database_has_no_figures_to_alert_on(pool: Pool, sink: Sink) -> None:
    async with pool.connection() as conn:
        figures = await read_figures(conn, 300.0)
    assert (figures.attempts, figures.failed_attempts, figures.replies) == (0, 0, 0)
    assert figures.queue_delay_seconds == 0.0
    assert figures.response_time_seconds is None
    check = await check_alerts_once(pool, alert_config(sink), instance=INSTANCE)
    assert check.leader
    assert check.outcomes == ()


async def test_healthy_figures_post_nothing(pool: Pool, seed: Seed, sink: Sink) -> None:
    await seed.jobs(100, "completed", 1)
    await seed.jobs(4, "completed", 2)  # 4 of 108 attempts failed: 3.7 %
    await seed.jobs(2, "pending", 0, waited=3.0)
    await seed.reply(1.5)
    await seed.reply(4.9)
    await seed.jobs(30, "dead", 3, ago=900.0)  # a bad hour, long gone
    check = await check_alerts_once(pool, alert_config(sink), instance=INSTANCE)
    assert check.figures is not None
    assert check.figures.attempts == 108
    assert check.outcomes == ()
    await trio.sleep(0.1)
    assert sink.requests == []
    assert await alert_rows(pool) == {}


async def test_too_few_attempts_do_not_fire(pool: Pool, seed: Seed, sink: Sink) -> None:
    await seed.jobs(3, "dead", 3)  # 9 of 9 failed, but fewer than the 20 needed
    check = await check_alerts_once(pool, alert_config(sink), instance=INSTANCE)
    assert check.outcomes == ()


@pytest.mark.parametrize("rule", RULE_IDS)
async def test_each_rule_fires_and_posts_once(
    pool: Pool, seed: Seed, sink: Sink, rule: str
) -> None:
    await SEEDS[rule](seed)
    with capture_logs() as logs:
        check = await check_alerts_once(pool, alert_config(sink), instance=INSTANCE)
    assert check.results() == {rule: "posted"}
    (request,) = await sink.wait_for(1)
    assert request.method == "POST"
    assert request.path == "/alerts"
    assert request.headers["content-type"] == "application/json"
    alert = request.json["alert"]
    assert alert["id"] == rule
    assert alert["instance"] == INSTANCE
    assert alert["windowSeconds"] == 300.0
    assert request.json["text"].startswith(
        f"[{alert['severity'].upper()}] {alert['name']} on chatd"
    )
    record = (await alert_rows(pool))[rule]
    assert record["fired_count"] == 1
    assert record["last_value"] == pytest.approx(alert["value"])
    assert alert["firedAt"] == record["last_fired_at"].isoformat().replace("+00:00", "Z")
    fired = [e for e in logs if e["event"] == "alert_fired"]
    assert [(e["alert"], e["log_level"]) for e in fired] == [(rule, "warning")]

    again = await check_alerts_once(pool, alert_config(sink), instance=INSTANCE)
    assert again.results() == {rule: "cooling_down"}
    await trio.sleep(0.1)
    assert len(sink.requests) == 1


async def test_fires_again_once_the_cooldown_has_passed(pool: Pool, seed: Seed, sink: Sink) -> None:
    await seed.all_rules()
    config = alert_config(sink, cooldown=0.5)
    first = await check_alerts_once(pool, config, instance=INSTANCE)
    assert set(first.results().values()) == {"posted"}
    inside = await check_alerts_once(pool, config, instance=INSTANCE)
    assert set(inside.results().values()) == {"cooling_down"}
    assert sorted(posted_ids(await sink.wait_for(3))) == sorted(RULE_IDS)
    await trio.sleep(0.6)
    after = await check_alerts_once(pool, config, instance=INSTANCE)
    assert after.results() == dict.fromkeys(RULE_IDS, "posted")
    await sink.wait_for(6)
    assert sorted(posted_ids(sink.requests)) == sorted(RULE_IDS * 2)
    assert {r["fired_count"] for r in (await alert_rows(pool)).values()} == {2}


async def test_each_rule_keeps_its_own_cooldown(pool: Pool, seed: Seed, sink: Sink) -> None:
    await seed.all_rules()
    config = alert_config(
        sink,
        failure_rate_cooldown_seconds=60.0,
        queue_delay_cooldown_seconds=0.3,
        response_time_cooldown_seconds=60.0,
    )
    await check_alerts_once(pool, config, instance=INSTANCE)
    await trio.sleep(0.4)
    check = await check_alerts_once(pool, config, instance=INSTANCE)
    assert check.results() == {
        FAILURE_RATE: "cooling_down",
        QUEUE_DELAY: "posted",
        RESPONSE_TIME: "cooling_down",
    }


async def test_two_chatd_checking_at_once_post_once(
    settings: Settings, seed: Seed, sink: Sink
) -> None:
    await seed.all_rules()
    config = alert_config(sink)
    checks = []
    url = settings.database.url
    async with open_pool(PoolConfig(url)) as first, open_pool(PoolConfig(url)) as second:

        async def check(pool: Pool) -> None:
            checks.append(await check_alerts_once(pool, config, instance=INSTANCE))

        for _ in range(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(check, first)
                nursery.start_soon(check, second)
    assert not all(c.leader for c in checks)  # they did overlap: one found the lock taken
    posted = [o.rule for c in checks for o in c.outcomes if o.result == "posted"]
    assert sorted(posted) == sorted(RULE_IDS)
    await sink.wait_for(3)
    await trio.sleep(0.1)
    assert sorted(posted_ids(sink.requests)) == sorted(RULE_IDS)


async def test_the_cooldown_record_lets_one_racer_through(settings: Settings) -> None:
    """Past the leader lock (say, handed over mid-round): of many claims at once, one wins."""
    url = settings.database.url
    wins = []
    async with open_pool(PoolConfig(url)) as first, open_pool(PoolConfig(url)) as second:

        async def claim(pool: Pool) -> None:
            async with pool.connection() as conn:
                wins.append(await claim_firing(conn, QUEUE_DELAY, 42.0, 600.0))

        async with trio.open_nursery() as nursery:
            for pool in (first, second) * 5:
                nursery.start_soon(claim, pool)
        assert len([w for w in wins if w is not None]) == 1
        rows = await alert_rows(first)
    assert rows[QUEUE_DELAY]["fired_count"] == 1


async def test_a_refused_post_is_logged_and_fired_again_next_round(
    pool: Pool, seed: Seed, sink: Sink
) -> None:
    await seed.stuck_queue()
    config = alert_config(sink)
    sink.refuse_connections()
    with capture_logs() as logs:
        check = await check_alerts_once(pool, config, instance=INSTANCE)
    assert check.results() == {QUEUE_DELAY: "post_failed"}
    (failed,) = [e for e in logs if e["event"] == "alert_post_failed"]
    assert failed["alert"] == QUEUE_DELAY
    assert "ConnectError" in failed["error"]
    assert "/alerts" not in failed["error"]  # the webhook URL carries a secret
    assert await alert_rows(pool) == {}  # taken back: no cooldown was spent

    sink.accept_connections()
    retried = await check_alerts_once(pool, config, instance=INSTANCE)
    assert retried.results() == {QUEUE_DELAY: "posted"}
    assert posted_ids(await sink.wait_for(1)) == [QUEUE_DELAY]
    assert (await alert_rows(pool))[QUEUE_DELAY]["fired_count"] == 1


async def test_a_500_restores_the_previous_record(pool: Pool, seed: Seed, sink: Sink) -> None:
    await seed.stuck_queue()
    config = alert_config(sink, cooldown=0.3)
    assert (await check_alerts_once(pool, config, instance=INSTANCE)).results() == {
        QUEUE_DELAY: "posted"
    }
    before = (await alert_rows(pool))[QUEUE_DELAY]
    await trio.sleep(0.4)
    sink.behave(Status(500, b"no_service"))
    with capture_logs() as logs:
        check = await check_alerts_once(pool, config, instance=INSTANCE)
    assert check.results() == {QUEUE_DELAY: "post_failed"}
    assert [e["error"] for e in logs if e["event"] == "alert_post_failed"] == [
        "HTTP 500: no_service"
    ]
    assert (await alert_rows(pool))[QUEUE_DELAY] == before

    sink.behave(Status(200, b"ok"))
    again = await check_alerts_once(pool, config, instance=INSTANCE)
    assert again.results() == {QUEUE_DELAY: "posted"}
    assert (await alert_rows(pool))[QUEUE_DELAY]["fired_count"] == 2
    assert len(await sink.wait_for(3)) == 3


async def test_a_redirect_is_not_followed(pool: Pool, seed: Seed, sink: Sink) -> None:
    await seed.stuck_queue()
    sink.behave(Status(307, headers={"location": f"{sink.url}/elsewhere"}))
    check = await check_alerts_once(pool, alert_config(sink), instance=INSTANCE)
    assert check.results() == {QUEUE_DELAY: "post_failed"}
    await trio.sleep(0.1)
    assert [r.path for r in sink.requests] == ["/alerts"]


async def test_a_post_that_hangs_times_out(pool: Pool, seed: Seed, sink: Sink) -> None:
    await seed.stuck_queue()
    sink.behave(Status(200, delay=5.0))
    with capture_logs() as logs, trio.fail_after(3):
        check = await check_alerts_once(
            pool, alert_config(sink, timeout_seconds=0.2), instance=INSTANCE
        )
    assert check.results() == {QUEUE_DELAY: "post_failed"}
    assert [e["error"] for e in logs if e["event"] == "alert_post_failed"] == [
        "no answer within 0.2s"
    ]


async def test_without_a_webhook_alerts_are_only_logged(pool: Pool, seed: Seed) -> None:
    await seed.all_rules()
    with capture_logs() as logs:
        check = await check_alerts_once(pool, alert_config(None), instance=INSTANCE)
    assert check.results() == dict.fromkeys(RULE_IDS, "logged")
    fired = {e["alert"]: e for e in logs if e["event"] == "alert_fired"}
    assert set(fired) == set(RULE_IDS)
    assert fired[FAILURE_RATE]["severity"] == "critical"
    assert fired[FAILURE_RATE]["text"].startswith("[CRITICAL] High webhook failure rate")
    # The cooldown holds for the log too: no line every minute.
    again = await check_alerts_once(pool, alert_config(None), instance=INSTANCE)
    assert set(again.results().values()) == {"cooling_down"}


async def test_the_loop_survives_failed_posts_and_delivers_when_back(
    pool: Pool, seed: Seed, sink: Sink
) -> None:
    await seed.stuck_queue()
    config = alert_config(sink, interval_seconds=0.1)
    sink.refuse_connections()
    with capture_logs() as logs, trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(partial_run(pool, config))
            while len([e for e in logs if e["event"] == "alert_post_failed"]) < 3:
                await trio.sleep(0.05)
            sink.accept_connections()
            (request,) = await sink.wait_for(1)
            await trio.sleep(0.3)  # a few more rounds: inside the cooldown, nothing more
            nursery.cancel_scope.cancel()
    assert request.json["alert"]["id"] == QUEUE_DELAY
    assert len(sink.requests) == 1


async def test_the_loop_survives_the_database_being_away(settings: Settings) -> None:
    missing = with_dbname(settings.database.url, "no_such_database")
    config = AlertSettings(interval_seconds=0.05)
    with capture_logs() as logs, trio.fail_after(10):
        async with (
            open_pool(PoolConfig(missing, acquire_timeout=0.2), fill=False) as pool,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(partial_run(pool, config))
            while len([e for e in logs if e["event"] == "alert_check_failed"]) < 3:
                await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    failures = [e for e in logs if e["event"] == "alert_check_failed"]
    assert "no_such_database" in failures[0]["error"]


def partial_run(pool: Pool, config: AlertSettings) -> Any:
    async def run(*, task_status: trio.TaskStatus[None]) -> None:
        await run_alerts(pool, lambda: config, instance=INSTANCE, task_status=task_status)

    return run
