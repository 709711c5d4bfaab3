"""The process tree of `chatd serve` (DESIGN.md): one trio.run, every task in a nursery here.

    serve
    ├─ signal watcher          SIGTERM/SIGINT: graceful stop (a second one: stop now); SIGHUP: reload
    ├─ sd_notify watchdog      WATCHDOG=1 from this loop (a stalled loop gets restarted)
    └─ database (embedded PostgreSQL child, supervised; or the configured URL, waited for if down)
       └─ pool ── migrations checked/applied
          └─ webhook senders (httpx, one per dispatcher worker) + background nursery
             ├─ SessionRegistry ── one SessionActor task per live session
             ├─ EventRouter ── notified events → messages read in batches → local feeds (Hub)
             ├─ Liveness ── every WebSocket's heartbeat and silence timeout, one timer for all
             ├─ GC policy ── survivors frozen out of the collector's sight; young threshold
             ├─ Listener ── the LISTEN connection; NOTIFY wakes the dispatchers and the router;
             │              once it is up, READY=1 goes to systemd
             ├─ maintenance, alerts ── one leader at a time (advisory lock) across the cluster
             ├─ STATUS= line for systemd, refreshed every few seconds
             └─ front nursery
                ├─ HTTP (hypercorn + QuartTrio: API, WebSocket, SSE, callbacks, admin, metrics)
                ├─ metrics listener (metrics.listen, if set)
                └─ Dispatcher ── one claimer feeding N workers, one rescuing abandoned claims

Shutdown runs inside out: STOPPING=1; stop accepting and claiming; live connections close (1001,
end of stream) so clients reconnect elsewhere; requests and webhook calls in flight
finish within the grace period (calls still running then release their jobs untouched); then
the actors and the LISTEN connection stop, the pool closes, the embedded PostgreSQL stops.
The components themselves are built once, before any of this runs, in chatd/wiring.py.
"""

from __future__ import annotations

import gc
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import structlog
import trio
from hypercorn.trio import serve as hypercorn_serve

from chatd.component_config import (
    allowed_origins,
    dispatch_config,
    hypercorn_config,
    metrics_hypercorn_config,
    sender_config,
)
from chatd.db.listen import Listener
from chatd.db.pool import open_pool
from chatd.db.queue import EVENTS_CHANNEL, JOBS_CHANNEL
from chatd.db.search import keep_search_language
from chatd.db.startup import open_database_url, pool_config, prepare_schema, wait_for_database
from chatd.errors import ConfigError
from chatd.files.attachments import FIRST_TRY_SECONDS
from chatd.http.asgi import create_app, create_metrics_app
from chatd.http.services import Services
from chatd.logs import renders_json
from chatd.ops.alerter import run_alerts
from chatd.ops.gc_policy import run_gc_policy
from chatd.ops.maintenance import run_maintenance
from chatd.ops.sd_notify import Notifier
from chatd.ops.status import run_status
from chatd.queue.dispatcher import Dispatcher
from chatd.queue.sender import open_senders
from chatd.realtime.relay import StreamRelay
from chatd.realtime.router import EventRouter
from chatd.settings import Settings, reload_settings
from chatd.wiring import build_services

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    state_dir: Path
    migrate: bool = True
    reload: Callable[[], Settings] | None = None  # SIGHUP: the settings as they are now


@dataclass(frozen=True)
class Ready:
    """Passed to `on_ready` once chatd answers requests."""

    urls: list[str]
    database: str  # "embedded" or "configured"
    state_dir: Path | None  # where the embedded PostgreSQL keeps its data

    def describe(self) -> str:
        where = (
            f"embedded PostgreSQL, data in {self.state_dir}"
            if self.state_dir
            else "PostgreSQL at database.url"
        )
        return f"chatd is listening on {', '.join(self.urls)} ({where})"


async def run_services(
    services: Services,
    stop: trio.Event,
    on_ready: Callable[[list[str]], None],
    notifier: Notifier | None = None,
) -> None:
    """Everything that serves, until `stop`: HTTP and the dispatchers drain together (within the
    grace period), then the actors and the LISTEN connection go.

    `on_ready` is called once HTTP is bound; systemd hears READY=1 only once LISTEN is active too.
    """
    notifier = notifier or Notifier(None)
    settings = services.settings
    relay = StreamRelay(services.hub, services.messages, services.process_tag)
    router = EventRouter(
        services.hub, services.messages, own_prefix=relay.prefix, notes=services.notes
    )
    # An empty webhook_url is the built-in demo bot on our own port: local, so no proxy.
    to_n8n = open_senders(
        sender_config(settings), settings.n8n.webhook_url, settings.queue.concurrency
    )
    async with to_n8n as senders, trio.open_nursery() as background:
        await background.start(services.attachments.load_key)  # signs file URLs
        # New messages are indexed in the configured language (ConfigError if PostgreSQL lacks it).
        await background.start(
            partial(keep_search_language, first_try=FIRST_TRY_SECONDS, retry_every=1.0),
            services.pool,
            settings.search.language,
        )
        await background.start(services.registry.run)
        await background.start(router.run)
        await background.start(relay.run)
        services.state.relay = relay
        services.metrics.watch_relay(relay)
        await background.start(services.hub.run)
        await background.start(services.liveness.run)
        await background.start(services.live_connections.run)
        await background.start(
            run_gc_policy,
            settings.server.gc_freeze_interval_seconds,
            settings.server.gc_full_collection_interval_seconds,
            settings.server.gc_young_threshold,
        )
        async with trio.open_nursery() as front:

            async def close_live_connections() -> None:
                await stop.wait()
                services.state.stopping = True  # /readyz: send new clients elsewhere
                services.hub.close()  # WebSockets close with 1001, event streams end

            front.start_soon(close_live_connections)
            urls: list[str] = await front.start(
                partial(
                    hypercorn_serve,
                    create_app(services),
                    hypercorn_config(settings),
                    shutdown_trigger=stop.wait,
                )
            )
            base_url = settings.server.public_url.rstrip("/") or urls[0]
            services.attachments.links.configure(base_url=base_url)  # file URLs are absolute
            services.state.allowed_origins = allowed_origins(settings, urls)
            if settings.metrics.listen:
                services.state.metrics_urls = await front.start(
                    partial(
                        hypercorn_serve,
                        create_metrics_app(services),
                        metrics_hypercorn_config(settings),
                        shutdown_trigger=stop.wait,
                    )
                )
                log.info("metrics_listening", urls=services.state.metrics_urls)
            dispatcher = Dispatcher(
                services.queue,
                senders,
                services.actors,
                relay,
                dispatch_config(settings, base_url),
                services.owner,
                services.attachments,
            )
            dispatch = settings.queue.dispatch

            def on_notify(channel: str, payload: str) -> None:
                if channel == EVENTS_CHANNEL:
                    router.on_notify(payload)
                else:
                    dispatcher.wake()

            def on_connect() -> None:
                router.on_connect()
                if dispatch:
                    dispatcher.wake()

            listener = Listener(
                services.pool.config.conninfo(),
                [EVENTS_CHANNEL, JOBS_CHANNEL] if dispatch else [EVENTS_CHANNEL],
                on_notify=on_notify,
                on_connect=on_connect,
                owner=services.owner,
            )

            async def listen_then_notify_ready() -> None:
                async with trio.open_nursery() as listening:
                    await listening.start(listener.run)
                    await notifier.ready()
                    if notifier.enabled:  # outside systemd there is no one to tell
                        log.info("chatd_ready_notified")

            # Not awaited: HTTP serves (health says why) while the database is away.
            background.start_soon(listen_then_notify_ready)
            services.state.listener = listener
            services.metrics.watch_listener(listener)
            if dispatch:
                await front.start(dispatcher.run, stop)
                services.state.dispatcher = dispatcher
                services.metrics.watch_dispatcher(dispatcher)
            background.start_soon(
                run_status, notifier, services.metrics, services.hub, listener, stop
            )
            background.start_soon(
                partial(
                    run_maintenance,
                    services.pool,
                    lambda: services.settings.maintenance,
                    files=services.attachments.disk,
                )
            )
            background.start_soon(services.handoff_watch.run, settings.server.public_url or urls[0])
            background.start_soon(
                partial(
                    run_alerts,
                    services.pool,
                    lambda: services.settings.alerts,
                    instance=settings.server.public_url or urls[0],
                )
            )
            on_ready(urls)
        background.cancel_scope.cancel()


async def serve(
    settings: Settings, options: ServeOptions, on_ready: Callable[[Ready], None] | None = None
) -> None:
    """Run chatd until SIGTERM/SIGINT; returns after an orderly shutdown."""
    stop = trio.Event()
    serving = False
    services: Services | None = None
    notifier = Notifier.from_environ()

    async def reload() -> None:
        await notifier.reloading()
        try:
            fresh = options.reload() if options.reload else settings
        except ConfigError as exc:
            log.error("reload_refused", error=str(exc))  # keep running as we are
        else:
            if services is not None:
                services.state.settings, restart = reload_settings(services.settings, fresh)
                log.info("reloaded", changed_but_need_restart=restart)
        await notifier.ready()

    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with trio.open_nursery() as root:

            async def watch_signals() -> None:
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        await reload()
                        continue
                    log.info("shutdown_requested", signal=signal.Signals(signum).name)
                    if not stop.is_set() and not renders_json(settings.log.format):
                        # For the person at the terminal (JSON logs have shutdown_requested).
                        print("stopping… (Ctrl-C again to force)", file=sys.stderr, flush=True)
                    if not serving or stop.is_set():
                        root.cancel_scope.cancel()  # still starting, or asked twice: stop now
                    stop.set()
                    await notifier.stopping()

            root.start_soon(watch_signals)
            # From the event loop itself and from the start: waiting for the database is not a
            # stall, but a loop that stops turning is (systemd restarts chatd after WatchdogSec).
            root.start_soon(notifier.run_watchdog)
            await notifier.status("starting")
            async with open_database_url(settings, options.state_dir) as (url, kind):

                def ready(urls: list[str]) -> None:
                    nonlocal serving
                    serving = True
                    log.info(
                        "chatd_ready",
                        urls=urls,
                        database=kind,
                        state_dir=str(options.state_dir) if kind == "embedded" else None,
                    )
                    if on_ready is not None:
                        on_ready(
                            Ready(urls, kind, options.state_dir if kind == "embedded" else None)
                        )

                if kind == "configured":
                    await wait_for_database(pool_config(settings, url), notifier.status)
                async with open_pool(pool_config(settings, url)) as pool:
                    await notifier.status("checking migrations")
                    await prepare_schema(pool, options.migrate)
                    services = build_services(settings, pool)
                    await run_services(services, stop, ready, notifier)
            root.cancel_scope.cancel()  # the signal watcher and the watchdog
    log.info("chatd_stopped")
    # The interpreter's exit runs full collections over every object left (~0.3 s of a 0.4 s
    # Ctrl-C); frozen, they are skipped, and reference counting still frees them.
    gc.freeze()
