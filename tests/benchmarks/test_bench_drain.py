"""Drain of a 20,000-job backlog to a sink that answers at once, against raw httpx to that sink.

What it measures: chatd's drain rate (jobs/s) against the rate at which the same httpx client,
configured as chatd configures it, POSTs a body of the same size to the same sink with the same
concurrency, measured in the same run. The old target, half, needs more CPU than this 2-core
machine has (tests/benchmarks/README.md); RATIO_FLOOR is a regression floor instead, set from runs
of the code as it was when the target was retired (0.23-0.34 over earlier rounds, 0.26-0.27 in
the round that set it): about 3/4 of the lowest, so a failure means something got slower.

    uv run pytest -m benchmark tests/benchmarks/test_bench_drain.py -s

- The backlog goes straight into the database (2,000 sessions x 10 messages, interleaved in
  time as if the shoppers had been typing while n8n was down): a few INSERT ... SELECT
  generate_series statements, then VACUUM ANALYZE. No HTTP on the way in.
- The sink is tests/benchmarks/fastsink.py in its own process: a raw-socket keep-alive server
  answering every POST with {"output":"ok"}, a valid n8n reply, so each job takes chatd's full
  path (claim, POST, parse the reply, store it through the session actor, settle the job).
- The baseline is chatd's own senders (open_senders as chatd opens them for that
  concurrency) in its own process: `concurrency` tasks POSTing back to back for 5 s. It is
  measured before chatd starts and again after the drain; the ratio uses their mean.
- The drain is timed from the first poll after chatd is listening (its dispatchers start just
  before that; the jobs already gone by then are not counted) to the first poll that sees no
  pending or processing job, polling every 0.5 s. A drain still going after
  DRAIN_CAP_SECONDS is stopped there to keep the run bounded (< 2 min): its rate is then taken
  over the jobs drained so far, and the test fails on "not drained" besides the ratio.
- To show whether the claim rate holds up as completed rows pile up: completions per 5 s slice
  of completed_at, and every 5 s an EXPLAIN ANALYZE of claim_jobs' candidate search (without
  its lock) with the buffers it touched.
- To show where the time goes: CPU ms per request or job of the client (chatd), the sink and
  PostgreSQL (from /proc), database transactions per job, and the machine's load average.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from chatd.core.n8n_request import request_body
from tests.benchmarks.fastsink import (
    cpu_between,
    cpu_seconds,
    database_transactions,
    fast_sink,
    load_average,
    postgres_cpu,
    raw_post_rate,
)
from tests.benchmarks.server import chatd_process

SESSIONS = 2_000
PER_SESSION = 10
JOBS = SESSIONS * PER_SESSION
BASELINE_SECONDS = 5.0
POLL_SECONDS = 0.5
# Keeps a run bounded. At the floor (~200 jobs/s against the 1,100-1,400 req/s raw rate seen
# here) the 20,000 jobs take ~100 s; a drain cut off here fails as "not drained" even if its rate
# so far met the floor, since the rate of a partial drain flatters a drain that slows down.
DRAIN_CAP_SECONDS = 110.0
SLICE_SECONDS = 5.0
RATIO_FLOOR = 0.17  # a regression floor, not a target: see the module docstring

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(200)]

FILL = [
    """
    INSERT INTO chat_sessions (id, token_hash, last_seq, expires_at, created_at, updated_at)
    SELECT md5('session' || s)::uuid::text, sha256(('token' || s)::bytea), %(per_session)s,
           now() + interval '1 day', now() - interval '2 hours', now() - interval '2 hours'
      FROM generate_series(0, %(sessions)s - 1) AS s
    """,
    # Message i is session i % SESSIONS's (i / SESSIONS + 1)-th, 1 ms after message i - 1.
    """
    INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, status, seq,
                               created_at, updated_at)
    SELECT md5('message' || i)::uuid::text, md5('session' || (i %% %(sessions)s))::uuid::text,
           'user', 'Hello, has my order #' || (100000 + i) || ' shipped yet? Thanks!', 'text',
           'pending', i / %(sessions)s + 1, t0 + i * interval '1 ms', t0 + i * interval '1 ms'
      FROM generate_series(0, %(jobs)s - 1) AS i,
           (SELECT now() - interval '1 hour' AS t0) AS start
    """,
    # The payload send_user_message builds (sql/queries/messages.sql), for a guest session.
    """
    INSERT INTO chat_webhook_queue (id, message_id, session_id, seq, webhook_url, payload, status,
                                    max_attempts, next_retry_at, created_at, updated_at)
    SELECT md5('job' || m.id)::uuid::text, m.id, m.session_id, m.seq, %(webhook_url)s,
           jsonb_build_object(
               'sessionId', m.session_id,
               'messageId', m.id,
               'seq', m.seq,
               'userId', NULL,
               'guestEmail', NULL,
               'message', jsonb_build_object(
                   'content', m.content,
                   'type', m.message_type,
                   'timestamp', to_char(m.created_at AT TIME ZONE 'UTC',
                                        'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
               'userContext', jsonb_build_object('isAuthenticated', false),
               'sessionMetadata', '{}'::jsonb),
           'pending', 3, m.created_at, m.created_at, m.created_at
      FROM chat_messages m
    """,
]
OPEN_JOBS = "SELECT count(*) FROM chat_webhook_queue WHERE status IN ('pending', 'processing')"
# The candidate search of claim_jobs (sql/queries/queue.sql) without its UPDATE and row lock, so
# EXPLAIN ANALYZE can time it while chatd drains without claiming anything; LIMIT 5 is
# one claim's batch when five workers are idle.
CLAIM_SCAN = """
EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
SELECT j.id
  FROM chat_webhook_queue j
 WHERE j.status = 'pending' AND j.next_retry_at <= now()
   AND j.seq = (SELECT min(e.seq) FROM chat_webhook_queue e
                 WHERE e.session_id = j.session_id
                   AND e.status IN ('pending', 'processing'))
 ORDER BY j.next_retry_at, j.id
 LIMIT 5
"""


@dataclass
class Drain:
    started: float = 0.0  # perf_counter of the first poll
    at_start: int = 0  # open jobs then
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, open)
    probes: list[tuple[float, float, int]] = field(default_factory=list)  # (s, scan ms, buffers)
    seconds: float = 0.0
    left: int = 0

    @property
    def drained(self) -> int:
        return self.at_start - self.left

    @property
    def rate(self) -> float:
        return self.drained / self.seconds if self.seconds else 0.0


def fill_backlog(database_url: str, webhook_url: str) -> None:
    params = {
        "sessions": SESSIONS,
        "per_session": PER_SESSION,
        "jobs": JOBS,
        "webhook_url": webhook_url,
    }
    with psycopg.connect(database_url) as conn:
        for statement in FILL:
            conn.execute(statement, params)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE chat_sessions, chat_messages, chat_webhook_queue")


def body_size(database_url: str, chatd_url: str) -> int:
    """The size of the body the dispatcher sends for a typical job (chatd/core/n8n_request.py)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT id, session_id, payload FROM chat_webhook_queue LIMIT 1"
        ).fetchone()
    assert row is not None
    body = request_body(
        row[2],
        session_id=row[1],
        delivery_id=row[0],
        callback_url=f"{chatd_url}/api/chat/webhook",
        mode="webhook",
    )
    return len(json.dumps(body, separators=(",", ":")))


def open_jobs(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(OPEN_JOBS).fetchone()
    assert row is not None
    return int(row[0])


def claim_scan(conn: psycopg.Connection[Any]) -> tuple[float, int]:
    """claim_jobs' candidate search: execution ms and shared buffers touched."""
    row = conn.execute(CLAIM_SCAN).fetchone()
    assert row is not None
    plan = row[0][0]
    buffers = plan["Plan"].get("Shared Hit Blocks", 0) + plan["Plan"].get("Shared Read Blocks", 0)
    return float(plan["Execution Time"]), int(buffers)


async def watch_drain(conn: psycopg.Connection[Any]) -> Drain:
    drain = Drain()
    drain.at_start = await trio.to_thread.run_sync(open_jobs, conn)
    drain.started = time.perf_counter()
    drain.samples.append((0.0, drain.at_start))
    left = drain.at_start
    next_print = SLICE_SECONDS
    while left:
        await trio.sleep(POLL_SECONDS)
        left = await trio.to_thread.run_sync(open_jobs, conn)
        elapsed = time.perf_counter() - drain.started
        drain.samples.append((elapsed, left))
        if elapsed >= next_print or not left:
            done = drain.at_start - left
            scan_ms, buffers = await trio.to_thread.run_sync(claim_scan, conn)
            drain.probes.append((elapsed, scan_ms, buffers))
            print(
                f"    {elapsed:5.1f} s  {done:6d} done  {left:6d} left  {done / elapsed:6.0f} jobs/s"
                f"   claim scan {scan_ms:6.2f} ms, {buffers:5d} buffers"
            )
            next_print += SLICE_SECONDS
        if elapsed > DRAIN_CAP_SECONDS:
            break
    drain.seconds = drain.samples[-1][0]
    drain.left = left
    return drain


def outcome(database_url: str) -> tuple[dict[str, int], list[tuple[int, int]], float]:
    """Jobs by status, completions per slice of completed_at, and the completed_at span."""
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        statuses = {
            r["status"]: r["n"]
            for r in conn.execute(
                "SELECT status, count(*) AS n FROM chat_webhook_queue GROUP BY status"
            ).fetchall()
        }
        span = conn.execute(
            "SELECT min(completed_at) AS first,"
            "       extract(epoch FROM max(completed_at) - min(completed_at))::float8 AS s"
            "  FROM chat_webhook_queue"
        ).fetchone()
        assert span is not None
        slices = conn.execute(
            """
            SELECT floor(extract(epoch FROM completed_at - %(first)s) / %(width)s)::int AS slice,
                   count(*) AS n
              FROM chat_webhook_queue
             WHERE completed_at IS NOT NULL
             GROUP BY 1 ORDER BY 1
            """,
            {"first": span["first"], "width": SLICE_SECONDS},
        ).fetchall()
    return statuses, [(r["slice"], r["n"]) for r in slices], float(span["s"] or 0.0)


async def baseline(url: str, concurrency: int, size: int, sink_pid: int) -> dict[str, Any]:
    sink_cpu = cpu_seconds(sink_pid)
    result = await raw_post_rate(
        url, concurrency=concurrency, seconds=BASELINE_SECONDS, body_size=size
    )
    result["sink_cpu"] = cpu_seconds(sink_pid) - sink_cpu
    result["rate"] = result["requests"] / result["seconds"]
    return result


@pytest.mark.parametrize("concurrency", [5, 8])
async def test_drain_against_raw_httpx(database_url: str, concurrency: int) -> None:
    load_before = os.getloadavg()
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = now - mark
        mark = now

    async with fast_sink() as sink:
        webhook_url = f"{sink.url}/webhook"
        phase("sink start")
        await trio.to_thread.run_sync(fill_backlog, database_url, webhook_url)
        size = body_size(database_url, "http://127.0.0.1:65535")
        phase("fill + vacuum")
        before = await baseline(webhook_url, concurrency, size, sink.pid)
        phase("baseline before")
        with psycopg.connect(database_url, autocommit=True) as poll:
            async with chatd_process(
                database_url,
                CHATD_QUEUE__DISPATCH="true",
                CHATD_QUEUE__CONCURRENCY=str(concurrency),
                CHATD_N8N__WEBHOOK_URL=webhook_url,
                CHATD_LOG__LEVEL="warning",
            ) as (_url, process):
                phase("chatd start")
                print(
                    f"\ndrain: {JOBS} jobs ({SESSIONS} sessions x {PER_SESSION}), "
                    f"concurrency {concurrency}, chatd pid {process.pid}, sink pid {sink.pid}"
                )
                cpu_start = (cpu_seconds(process.pid), cpu_seconds(sink.pid), postgres_cpu(poll))
                xacts_start = database_transactions(poll)
                drain = await watch_drain(poll)
                cpu_end = (cpu_seconds(process.pid), cpu_seconds(sink.pid), postgres_cpu(poll))
                phase("drain")
                await trio.sleep(0.6)  # PostgreSQL publishes its counters within ~0.5 s
                # Less this test's own: each poll, each claim scan, and two around them.
                own = len(drain.samples) + len(drain.probes) + 2
                xacts = database_transactions(poll) - xacts_start - own
            phase("chatd stop")
        after = await baseline(webhook_url, concurrency, size, sink.pid)
        phase("baseline after")
    phase("sink stop")
    assert sink.stats is not None
    statuses, slices, span = outcome(database_url)
    phase("outcome")

    raw = (before["rate"] + after["rate"]) / 2
    ratio = drain.rate / raw
    completed = statuses.get("completed", 0)
    steady = (completed - 1) / span if span else 0.0
    chatd_cpu = cpu_end[0] - cpu_start[0]
    sink_cpu = cpu_end[1] - cpu_start[1]
    pg_cpu = cpu_between(cpu_start[2], cpu_end[2])
    per_job = 1000 / max(drain.drained, 1)

    print(
        f"\nDrain of {JOBS} jobs vs raw httpx POSTs of a {size}-byte body to the same sink, "
        f"concurrency {concurrency}"
    )
    print(
        f"  {'':<32} {'rate':>8}         {'client':>8} {'sink':>7} {'postgres':>9} {'total':>7}"
        "  (CPU ms per request/job; % of one core)"
    )
    for name, run in (("raw httpx, before", before), ("raw httpx, after", after)):
        ms = 1000 / max(run["requests"], 1)
        print(
            f"  {name:<32} {run['rate']:8.0f} req/s   {run['cpu'] * ms:8.2f} "
            f"{run['sink_cpu'] * ms:7.2f} {'-':>9} {(run['cpu'] + run['sink_cpu']) * ms:7.2f}"
            f"  client {run['cpu'] / run['seconds']:4.0%}, errors {run['errors']}"
        )
    print(f"  {'raw httpx, mean = baseline':<32} {raw:8.0f} req/s")
    print(
        f"  {'chatd drain (polled)':<32} {drain.rate:8.0f} jobs/s  {chatd_cpu * per_job:8.2f} "
        f"{sink_cpu * per_job:7.2f} {pg_cpu * per_job:9.2f} "
        f"{(chatd_cpu + sink_cpu + pg_cpu) * per_job:7.2f}"
        f"  chatd {chatd_cpu / drain.seconds:4.0%}, postgres {pg_cpu / drain.seconds:4.0%}; "
        f"{drain.drained} jobs in {drain.seconds:.1f} s"
        + (f", NOT DRAINED: {drain.left} left" if drain.left else "")
    )
    print(f"  {'chatd drain (completed_at span)':<32} {steady:8.0f} jobs/s")
    print(f"  ratio drain / raw = {ratio:.2f}  (regression floor {RATIO_FLOOR:.2f})")
    print(
        f"  jobs by status: {statuses}; the sink saw {sink.stats.requests} requests in all; "
        f"chatd ran {xacts / max(drain.drained, 1):.1f} database transactions per job"
    )
    print("  " + load_average(load_before))
    print("  phases: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items()))
    print(f"  completions per {SLICE_SECONDS:g} s of completed_at, and the claim scan then:")
    last_slice = slices[-1][0] if slices else 0
    for index, count in slices:
        width = SLICE_SECONDS if index < last_slice else span - index * SLICE_SECONDS
        rate = count / width if width > 0.05 else float("nan")
        probe = next((p for p in drain.probes if p[0] >= (index + 1) * SLICE_SECONDS), None)
        print(
            f"    {index * SLICE_SECONDS:4.0f}-{index * SLICE_SECONDS + SLICE_SECONDS:<3.0f} s"
            f"  {count:6d} jobs  {rate:6.0f} jobs/s"
            + (f"   claim scan {probe[1]:6.2f} ms, {probe[2]:5d} buffers" if probe else "")
            + ("  (partial slice)" if index == last_slice else "")
        )

    assert not before["errors"]
    assert not after["errors"]
    assert ratio >= RATIO_FLOOR
    assert not drain.left
    assert statuses == {"completed": JOBS}
