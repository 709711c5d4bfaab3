"""chatd's Prometheus metrics, one registry per server (tests run several in one process).

Two kinds: instruments the code updates as things happen (sessions and messages counted, the
response-time histogram), and figures read when Prometheus scrapes — from the statistics the
dispatcher, registry, pool, listener and hub already keep, and from the database for the
cluster-wide queue (refreshed by `refresh()` just before rendering, bounded by a timeout).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chatd.db.pool import Pool
from chatd.db.queries import query
from chatd.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from chatd.http.services import Services

SNAPSHOT_TIMEOUT_SECONDS = 3.0
# From "instant" to "the guide's alert" (5 s) and well past it: n8n workflows with an LLM are slow.
RESPONSE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True)
class QueueSnapshot:
    pending: int
    processing: int
    dead: int
    oldest_due_seconds: float
    active_sessions: int


async def queue_snapshot(pool: Pool) -> QueueSnapshot:
    async with pool.connection() as conn:
        row = await (await conn.execute(query("metrics_snapshot"))).fetchone()
    assert row is not None  # scalar subqueries: always one row
    return QueueSnapshot(**row)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sessions_created = Counter(
            "chatd_sessions_created", "Chat sessions created.", registry=self.registry
        )
        self.messages_sent = Counter(
            "chatd_messages_sent",
            "Shoppers' messages accepted (stored and queued for n8n).",
            registry=self.registry,
        )
        self.duplicate_replies = Counter(
            "chatd_duplicate_replies",
            "Bot replies received again (a repeated callback, or a callback racing the"
            " synchronous reply) and stored once.",
            registry=self.registry,
        )
        self.response_time = Histogram(
            "chatd_response_time_seconds",
            "From a shopper's message stored to the bot's reply (or the fallback) stored.",
            buckets=RESPONSE_BUCKETS,
            registry=self.registry,
        )
        self.snapshot: QueueSnapshot | None = None  # None: the database did not answer

    def attach(self, services: Services) -> None:
        """Export the live figures of a serving chatd too."""
        self.registry.register(_LiveCollector(services, lambda: self.snapshot))

    async def refresh(self, pool: Pool) -> None:
        try:
            with trio.fail_after(SNAPSHOT_TIMEOUT_SECONDS):
                self.snapshot = await queue_snapshot(pool)
        except (DatabaseUnavailable, trio.TooSlowError):
            self.snapshot = None

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    def __init__(self, services: Services, snapshot: Callable[[], QueueSnapshot | None]) -> None:
        self._services = services
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from self._queue()
        yield from self._dispatch()
        yield from self._connections()
        yield from self._internals()

    def _queue(self) -> Iterator[Metric]:
        snap = self._snapshot()
        yield _gauge(
            "chatd_database_up", "1 if PostgreSQL answered the last scrape.", int(bool(snap))
        )
        if snap is None:
            return
        jobs = GaugeMetricFamily(
            "chatd_queue_jobs", "Webhook jobs by status (cluster-wide).", labels=["status"]
        )
        for status, count in (
            ("pending", snap.pending),
            ("processing", snap.processing),
            ("dead", snap.dead),
        ):
            jobs.add_metric([status], count)
        yield jobs
        yield _gauge(
            "chatd_queue_oldest_pending_seconds",
            "How long the longest-waiting due job has waited (cluster-wide).",
            snap.oldest_due_seconds,
        )
        yield _gauge(
            "chatd_active_sessions", "Sessions active and not expired.", snap.active_sessions
        )

    def _dispatch(self) -> Iterator[Metric]:
        dispatcher = self._services.dispatcher
        if dispatcher is None:
            return  # this process does not deliver (queue.dispatch = false)
        stats = dispatcher.statistics
        attempts = CounterMetricFamily(
            "chatd_webhook_attempts",
            "Attempts to deliver to n8n, by outcome (retry: failed, will be retried; dead:"
            " failed for the last time).",
            labels=["outcome"],
        )
        for outcome, count in (
            ("delivered", stats.delivered),
            ("retry", stats.retried),
            ("dead", stats.dead),
        ):
            attempts.add_metric([outcome], count)
        yield attempts
        yield _counter(
            "chatd_messages_delivered", "Messages n8n accepted (the guide's).", stats.delivered
        )
        yield _counter(
            "chatd_webhook_failures",
            "Failed attempts to deliver to n8n (the guide's).",
            stats.retried + stats.dead,
        )
        yield _counter("chatd_dead_letters", "Jobs dead-lettered here.", stats.dead)
        yield _counter(
            "chatd_lease_rescues", "Abandoned claims taken back (lease expired).", stats.rescued
        )
        yield _counter(
            "chatd_lost_leases",
            "Outcomes discarded because the job's lease had been rescued meanwhile.",
            stats.lost_leases,
        )
        yield _counter(
            "chatd_invalid_replies",
            "Replies n8n sent that were unusable (the message counts as taken).",
            stats.invalid_replies,
        )
        yield _counter(
            "chatd_settle_failures",
            "Outcomes that could not be recorded at once (database away).",
            stats.settle_failures,
        )
        yield _gauge("chatd_dispatch_in_flight", "Calls to n8n in progress.", stats.in_flight)

    def _connections(self) -> Iterator[Metric]:
        services = self._services
        yield _gauge("chatd_websocket_connections", "Open WebSockets.", services.websockets)
        yield _gauge(
            "chatd_live_connections",
            "Clients receiving events: WebSockets, SSE streams and waiting long-polls.",
            services.hub.connections,
        )
        closes = CounterMetricFamily(
            "chatd_websocket_closes",
            "WebSockets closed by chatd, by close code (PROTOCOL.md).",
            labels=["code"],
        )
        for code, count in sorted(services.close_codes.items()):
            closes.add_metric([str(code)], count)
        yield closes
        failures = CounterMetricFamily(
            "chatd_signature_failures",
            "Callbacks refused by signature check, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(services.signature_failures.items()):
            failures.add_metric([reason], count)
        yield failures

    def _internals(self) -> Iterator[Metric]:
        services = self._services
        actors = services.registry.statistics()
        yield _gauge("chatd_session_actors", "Session actors alive.", actors.live_actors)
        yield _counter(
            "chatd_actor_restarts", "Session actors restarted after a crash.", actors.restarts
        )
        pool = services.pool.statistics()
        connections = GaugeMetricFamily(
            "chatd_db_pool_connections", "Database pool connections by state.", labels=["state"]
        )
        connections.add_metric(["idle"], pool.idle)
        connections.add_metric(["in_use"], pool.in_use)
        yield connections
        yield _gauge("chatd_db_pool_max_connections", "Database pool size limit.", pool.max_size)
        listener = services.listener
        if listener is not None:
            yield _gauge(
                "chatd_listen_connected",
                "1 while the LISTEN connection is up.",
                int(listener.connected),
            )
            yield _counter(
                "chatd_listen_reconnects", "LISTEN connection re-established.", listener.reconnects
            )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)
