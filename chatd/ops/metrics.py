"""chatd's Prometheus metrics, one registry per server (tests run several in one process).

Nothing here counts. Each component keeps its own counters and hands out frozen statistics()
(STYLE.md, "Counting, one way"); at each scrape the collector reads them, and the cluster-wide
queue figures from the database (refreshed by `refresh()` just before rendering, bounded by a
timeout). The LISTEN connection and the dispatcher exist only once serving: `watch_*` adds them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import trio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from chatd.actors.registry import SessionRegistry
from chatd.actors.session import SessionTally
from chatd.core.histogram import HistogramSnapshot
from chatd.db.handoffs import HandoffFigures, HandoffStore
from chatd.db.health import QueueSnapshot, queue_snapshot
from chatd.db.listen import Listener
from chatd.db.pool import Pool
from chatd.db.sessions import SessionStore
from chatd.errors import DatabaseUnavailable
from chatd.files.attachments import Attachments
from chatd.http.tally import CallbackTally, WebSocketTally
from chatd.ops.handoff_watch import HandoffWatch
from chatd.queue.dispatcher import Dispatcher
from chatd.realtime.admission import LiveConnections
from chatd.realtime.hub import Hub
from chatd.realtime.relay import StreamRelay

SNAPSHOT_TIMEOUT_SECONDS = 3.0
# Time to the first human reply after a handoff (seconds): from "at once" to a day of waiting.
FIRST_REPLY_BOUNDS = (30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0, 86400.0)


class Metrics(Collector):
    def __init__(
        self,
        *,
        pool: Pool,
        sessions: SessionStore,
        actors: SessionTally,
        registry: SessionRegistry[Any],
        hub: Hub,
        websockets: WebSocketTally,
        callbacks: CallbackTally,
        admissions: LiveConnections,
        attachments: Attachments,
        handoffs: HandoffStore,
        handoff_watch: HandoffWatch,
    ) -> None:
        self.snapshot: QueueSnapshot | None = None  # None: the database did not answer
        self.handoff_figures: HandoffFigures | None = None
        self._handoffs = handoffs
        self._handoff_watch = handoff_watch
        self._pool = pool
        self._sessions = sessions
        self._actors = actors
        self._registry = registry
        self._hub = hub
        self._websockets = websockets
        self._callbacks = callbacks
        self._admissions = admissions
        self._attachments = attachments
        self._listener: Listener | None = None
        self._dispatcher: Dispatcher | None = None
        self._relay: StreamRelay | None = None
        self._since = time.time()  # the counters' `_created`: they count from this process's start
        self._prometheus = CollectorRegistry()
        self._prometheus.register(self)

    def watch_listener(self, listener: Listener) -> None:
        self._listener = listener

    def watch_dispatcher(self, dispatcher: Dispatcher) -> None:
        """Only a process that delivers (queue.dispatch) has one."""
        self._dispatcher = dispatcher

    def watch_relay(self, relay: StreamRelay) -> None:
        self._relay = relay

    async def refresh(self) -> None:
        try:
            with trio.fail_after(SNAPSHOT_TIMEOUT_SECONDS):
                self.snapshot = await queue_snapshot(self._pool)
                self.handoff_figures = await self._handoffs.figures(FIRST_REPLY_BOUNDS)
        except (DatabaseUnavailable, trio.TooSlowError):
            self.snapshot = None
            self.handoff_figures = None

    def render(self) -> bytes:
        return generate_latest(self._prometheus)

    def collect(self) -> Iterator[Metric]:
        yield from self._conversations()
        yield from self._handoff_metrics()
        yield from self._queue()
        yield from self._dispatch()
        yield from self._connections()
        yield from self._files()
        yield from self._internals()

    def _conversations(self) -> Iterator[Metric]:
        actors, since = self._actors.statistics(), self._since
        created = self._sessions.statistics().created
        yield _counter("chatd_sessions_created", "Chat sessions created.", created, since)
        yield _counter(
            "chatd_messages_sent",
            "Shoppers' messages accepted (stored and queued for n8n).",
            actors.messages_sent,
            since,
        )
        yield _counter(
            "chatd_duplicate_replies",
            "Bot replies received again (a repeated callback, or a callback racing the"
            " synchronous reply) and stored once.",
            actors.duplicate_replies,
            since,
        )
        yield _histogram(
            "chatd_response_time_seconds",
            "From a shopper's message stored to the bot's reply (or the fallback) stored.",
            actors.response_time,
            since,
        )

    def _handoff_metrics(self) -> Iterator[Metric]:
        watch = self._handoff_watch.statistics()
        yield _counter(
            "chatd_nobody_there_notices",
            "Shoppers told here that nobody could answer their handoff (outside business hours,"
            " or no agent online).",
            watch.notices,
            self._since,
        )
        alerts = CounterMetricFamily(
            "chatd_handoff_alerts",
            "Alerts about waiting shoppers sent from here, by channel and outcome.",
            labels=["channel", "outcome"],
        )
        for channel, outcome, count in (
            ("webhook", "sent", watch.alerts_posted),
            ("webhook", "failed", watch.alerts_failed),
            ("email", "sent", watch.mails_sent),
            ("email", "failed", watch.mails_failed),
        ):
            alerts.add_metric([channel, outcome], count)
        yield alerts
        figures = self.handoff_figures
        if figures is None:
            return
        handoffs = CounterMetricFamily(
            "chatd_handoffs",
            "Handoffs to a person, by who asked: the shopper, the bot (a reply's handoff action),"
            " an agent (taking a bot conversation at will). Cluster-wide, from the database.",
            labels=["requested_by"],
        )
        for by, count in figures.requested.items():
            handoffs.add_metric([by], count)
        yield handoffs
        yield _gauge(
            "chatd_conversations_waiting",
            "Conversations waiting for a person, nobody holding them yet (cluster-wide).",
            figures.waiting,
        )
        yield _gauge(
            "chatd_agents_online",
            "Agents with the inbox open (cluster-wide; a killed process's expire).",
            figures.agents_online,
        )
        yield _histogram(
            "chatd_first_human_reply_seconds",
            "From a handoff to the first reply of the agent who took it (cluster-wide).",
            figures.first_reply,
            self._since,
        )

    def _queue(self) -> Iterator[Metric]:
        snap = self.snapshot
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
        if self._dispatcher is None:
            return  # this process does not deliver (queue.dispatch = false)
        stats = self._dispatcher.statistics()
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
            "chatd_owner_rescues",
            "Claims of a dead chatd process taken back at once (its owner lock was gone).",
            stats.owner_rescues,
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
        yield _counter(
            "chatd_streamed_replies",
            "Replies n8n streamed, stored whole (one count per stream, however many messages).",
            stats.streamed,
        )
        yield _counter(
            "chatd_stream_failures",
            "Streamed replies that failed (withdrawn; retried, then the fallback).",
            stats.stream_failures,
        )
        if self._relay is not None:
            relay = self._relay.statistics()
            yield _counter(
                "chatd_stream_pieces", "Pieces of streamed replies passed on.", relay.pieces
            )
            yield _counter(
                "chatd_stream_notifications",
                "Notifications that carried streamed pieces to the other chatd processes.",
                relay.notifications,
            )

    def _connections(self) -> Iterator[Metric]:
        websockets = self._websockets.statistics()
        yield _gauge("chatd_websocket_connections", "Open WebSockets.", websockets.open)
        yield _gauge(
            "chatd_live_connections",
            "Clients receiving events: WebSockets, SSE streams and waiting long-polls.",
            self._hub.connections,
        )
        yield _counter(
            "chatd_connections_refused",
            "Live connections refused: the address held websocket.max_connections_per_ip here or"
            " across the cluster.",
            self._admissions.statistics().refused,
        )
        closes = CounterMetricFamily(
            "chatd_websocket_closes",
            "WebSockets closed by chatd, by close code (PROTOCOL.md).",
            labels=["code"],
        )
        for code, count in websockets.close_codes.items():
            closes.add_metric([str(code)], count)
        yield closes
        failures = CounterMetricFamily(
            "chatd_signature_failures",
            "Callbacks refused by signature check, by reason.",
            labels=["reason"],
        )
        for reason, count in self._callbacks.statistics().signature_failures.items():
            failures.add_metric([reason], count)
        yield failures

    def _files(self) -> Iterator[Metric]:
        stats = self._attachments.statistics()
        yield _counter(
            "chatd_uploads", "Files uploaded and stored here.", stats.uploads, self._since
        )
        refused = CounterMetricFamily(
            "chatd_uploads_refused",
            "Uploads refused here, by reason (the error code: file_too_large,"
            " file_type_not_allowed, upload_quota, image_unreadable, ...).",
            labels=["reason"],
        )
        for reason, count in sorted(stats.refused.items()):
            refused.add_metric([reason], count)
        yield refused
        if self.snapshot is not None:
            yield _gauge(
                "chatd_attachment_bytes",
                "Bytes of stored files, originals and thumbnails (cluster-wide).",
                self.snapshot.attachment_bytes,
            )

    def _internals(self) -> Iterator[Metric]:
        actors = self._registry.statistics()
        yield _gauge("chatd_session_actors", "Session actors alive.", actors.live_actors)
        yield _counter(
            "chatd_actor_restarts", "Session actors restarted after a crash.", actors.restarts
        )
        pool = self._pool.statistics()
        connections = GaugeMetricFamily(
            "chatd_db_pool_connections", "Database pool connections by state.", labels=["state"]
        )
        connections.add_metric(["idle"], pool.idle)
        connections.add_metric(["in_use"], pool.in_use)
        yield connections
        yield _gauge("chatd_db_pool_max_connections", "Database pool size limit.", pool.max_size)
        listener = self._listener
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


def _counter(
    name: str, documentation: str, value: float, since: float | None = None
) -> CounterMetricFamily:
    """With `since`, the `_created` series too, as prometheus_client's own Counter has it."""
    return CounterMetricFamily(name, documentation, value=value, created=since)


def _histogram(
    name: str, documentation: str, snapshot: HistogramSnapshot, since: float
) -> HistogramMetricFamily:
    """Bucket labels and the `_created` series as prometheus_client's own Histogram has them."""
    bounds = [*map(floatToGoString, snapshot.bounds), "+Inf"]
    family = HistogramMetricFamily(
        name,
        documentation,
        buckets=list(zip(bounds, snapshot.cumulative, strict=True)),
        sum_value=snapshot.total,
    )
    family.samples.append(Sample(f"{name}_created", {}, since))
    return family
