"""GET /metrics, scraped and parsed with Prometheus' own text parser, against a real pipeline."""

from __future__ import annotations

from typing import Any

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.chat import new_session, send
from tests.integration.test_delivery import SECRET, _pending_message, _post_callback, open_pipeline
from tests.sink import Reply, Status, sign
from tests.unit.test_prometheus_rules import RULE_METRICS


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(scrape: dict[Any, float], name: str, **labels: str) -> float:
    return scrape[(name, tuple(sorted(labels.items())))]


async def scrape(client: httpx.AsyncClient, **headers: str) -> dict[Any, float]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return samples(response.text)


async def test_metrics_follow_the_pipeline(nursery: trio.Nursery, database_url: str) -> None:
    pipeline = await open_pipeline(nursery, database_url)
    pipeline.sink.behave(Reply("hello from n8n"))
    async with pipeline.chatd.client() as client:
        with trio.fail_after(5):
            while value(before := await scrape(client), "chatd_listen_connected") != 1:
                await trio.sleep(0.02)  # the LISTEN connection comes up in the background
        assert value(before, "chatd_database_up") == 1
        assert value(before, "chatd_sessions_created_total") == 0
        assert value(before, "chatd_queue_jobs", status="pending") == 0

        session = await new_session(client)
        await send(client, session, "hi")
        await pipeline.wait_messages(session, 2)
        # A 500 then dead letter: attempts by outcome, failures, dead letters, the fallback.
        pipeline.sink.behave(Status(500))
        await send(client, session, "second")
        await pipeline.wait_messages(session, 4)

        after = await scrape(client)
    assert value(after, "chatd_sessions_created_total") == 1
    assert value(after, "chatd_messages_sent_total") == 2
    assert value(after, "chatd_messages_delivered_total") == 1
    assert value(after, "chatd_webhook_attempts_total", outcome="delivered") == 1
    assert value(after, "chatd_webhook_attempts_total", outcome="retry") == 2
    assert value(after, "chatd_webhook_attempts_total", outcome="dead") == 1
    assert value(after, "chatd_webhook_failures_total") == 3
    assert value(after, "chatd_dead_letters_total") == 1
    assert value(after, "chatd_queue_jobs", status="dead") == 1
    assert value(after, "chatd_active_sessions") == 1
    # The reply and the fallback: two responses timed, both well under a minute.
    assert value(after, "chatd_response_time_seconds_count") == 2
    assert 0 < value(after, "chatd_response_time_seconds_sum") < 60
    assert value(after, "chatd_response_time_seconds_bucket", le="+Inf") == 2
    assert value(after, "chatd_db_pool_max_connections") >= 1
    assert value(after, "chatd_session_actors") >= 1
    # Every metric the shipped Prometheus alerting rules use is really exported.
    assert {name for name, _labels in after} >= RULE_METRICS


async def test_signature_failures_and_duplicate_replies_are_counted(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipeline = await open_pipeline(nursery, database_url)
    session, message_id = await _pending_message(pipeline)
    body = (
        f'{{"sessionId": "{session.id}", "replyTo": "{message_id}",'
        f' "response": {{"content": "later"}}}}'
    ).encode()
    forged = await _post_callback(pipeline, body, {"X-Webhook-Signature": "zz"})
    assert forged.status_code == 401
    for _ in range(2):  # n8n retried its callback: stored and shown once, counted as duplicate
        assert (await _post_callback(pipeline, body, sign(body, SECRET, "hex"))).status_code == 200
    async with pipeline.chatd.client() as client:
        scraped = await scrape(client)
    assert value(scraped, "chatd_signature_failures_total", reason="malformed") == 1
    assert value(scraped, "chatd_duplicate_replies_total") == 1
    assert value(scraped, "chatd_response_time_seconds_count") == 1


async def test_token_protects_metrics(nursery: trio.Nursery, database_url: str) -> None:
    pipeline = await open_pipeline(nursery, database_url, metrics={"token": "prom-secret"})
    async with pipeline.chatd.client() as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer prom-secreT"})
        assert (missing.status_code, wrong.status_code) == (401, 401)
        assert wrong.json()["error"]["code"] == "bad_metrics_token"
        assert "prom-secret" not in wrong.text
        await scrape(client, Authorization="Bearer prom-secret")


async def test_wrong_metrics_tokens_count_against_the_address(
    nursery: trio.Nursery, database_url: str
) -> None:
    pipeline = await open_pipeline(
        nursery,
        database_url,
        metrics={"token": "prom-secret"},
        server={"operator_auth_failures_max": 2},
    )
    async with pipeline.chatd.client() as client:
        for _ in range(2):
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
        refused = await client.get("/metrics", headers={"Authorization": "Bearer prom-secret"})
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_auth_failures"
        assert "Retry-After" in refused.headers


async def test_metrics_on_their_own_address(nursery: trio.Nursery, database_url: str) -> None:
    pipeline = await open_pipeline(nursery, database_url, metrics={"listen": "127.0.0.1:0"})
    [metrics_url] = pipeline.chatd.services.state.metrics_urls
    async with pipeline.chatd.client() as client:
        assert (await client.get("/metrics")).status_code == 404  # not on the public port
    async with httpx.AsyncClient(base_url=metrics_url) as client:
        assert value(await scrape(client), "chatd_database_up") == 1
        assert (await client.get("/api/chat/health")).status_code == 404  # and nothing else here


async def test_readyz_tells_ready_from_stopping(nursery: trio.Nursery, database_url: str) -> None:
    pipeline = await open_pipeline(nursery, database_url)
    async with pipeline.chatd.client() as client:
        with trio.fail_after(5):
            while (ready := await client.get("/readyz")).status_code != 200:
                await trio.sleep(0.02)  # the LISTEN connection comes up in the background
        assert ready.json() == {
            "status": "ready",
            "checks": {"accepting": "yes", "listen": "up", "database": "up"},
        }
        pipeline.chatd.services.state.stopping = True
        stopping = await client.get("/readyz")
        assert stopping.status_code == 503
        assert stopping.json()["checks"]["accepting"] == "no (shutting down)"
        assert (await client.get("/livez")).status_code == 200
