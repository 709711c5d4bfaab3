"""Every component of one chatd process, built once from the settings and the pool and wired
together (Services); chatd/process.py runs them in its nursery tree."""

from __future__ import annotations

import trio

from chatd.actors.client import SessionClient
from chatd.actors.registry import SessionRegistry
from chatd.actors.session import SessionActor, SessionActorConfig, SessionCommand, SessionTally
from chatd.core.urls import without_secrets
from chatd.db.agents import AgentStore
from chatd.db.conversations import ConversationStore
from chatd.db.handoffs import HandoffStore, PresenceStore
from chatd.db.limits import LimitStore
from chatd.db.messages import MessageStore, QueueTarget
from chatd.db.notes import CannedStore, NoteStore
from chatd.db.owner import Owner
from chatd.db.pool import Pool
from chatd.db.queue import QueueStore
from chatd.db.sessions import SessionStore
from chatd.db.takeover import TakeoverStore
from chatd.files.attachments import Attachments
from chatd.http.address_limits import AddressLimit
from chatd.http.routes_demo_bot import DEMO_WEBHOOK_PATH
from chatd.http.services import Services, ServingState
from chatd.http.tally import CallbackTally, WebSocketTally
from chatd.ops.handoff_watch import HandoffWatch
from chatd.ops.metrics import Metrics
from chatd.realtime.admission import LiveConnections
from chatd.realtime.hub import Hub
from chatd.realtime.liveness import Liveness
from chatd.settings import Settings

# A stream's text so far is forgotten this long after n8n.stream_max_seconds, if nothing ended it
# (its reader died): its reader stops by then, and the withdrawal may take a moment to arrive.
STREAM_TTL_MARGIN = 30.0


def build_services(settings: Settings, pool: Pool) -> Services:
    chat = settings.chat
    attachments = Attachments(pool, settings.attachments, base_url=settings.server.public_url)
    messages = MessageStore(
        pool,
        QueueTarget(
            webhook_url=without_secrets(settings.n8n.webhook_url) or DEMO_WEBHOOK_PATH,
            max_attempts=settings.queue.max_attempts,
            guest_ttl_seconds=chat.guest_session_ttl_seconds,
            user_ttl_seconds=chat.user_session_ttl_seconds,
            rate_limit_max=chat.rate_limit_max,
            rate_limit_window_seconds=chat.rate_limit_window_seconds,
        ),
        attachments.links,
    )
    sessions = SessionStore(
        pool,
        guest_ttl_seconds=chat.guest_session_ttl_seconds,
        user_ttl_seconds=chat.user_session_ttl_seconds,
    )
    queue = QueueStore(pool)
    conversations = ConversationStore(pool, messages.target)
    takeover = TakeoverStore(pool, attachments.links)
    actor_config = SessionActorConfig(settings.actors.idle_timeout_seconds)
    hub = Hub(stream_ttl=settings.n8n.stream_max_seconds + STREAM_TTL_MARGIN)
    tally = SessionTally()

    def spawn(session_id: str, mailbox: trio.MemoryReceiveChannel[SessionCommand]) -> SessionActor:
        return SessionActor(
            session_id, mailbox, messages, queue, hub, actor_config, tally, conversations, takeover
        )

    registry = SessionRegistry[SessionCommand](
        spawn,
        mailbox_size=settings.actors.mailbox_size,
        call_timeout=settings.actors.call_timeout_seconds,
        restart_backoff_max=settings.actors.restart_backoff_max_seconds,
    )
    websockets, callbacks = WebSocketTally(), CallbackTally()
    owner, limits = Owner(), LimitStore(pool)
    live_connections = LiveConnections(limits, owner, settings.websocket.max_connections_per_ip)
    presence, handoffs = PresenceStore(pool), HandoffStore(pool)
    state = ServingState(settings)
    handoff_watch = HandoffWatch(handoffs, presence, lambda: state.settings)
    metrics = Metrics(
        pool=pool,
        sessions=sessions,
        actors=tally,
        registry=registry,
        hub=hub,
        websockets=websockets,
        callbacks=callbacks,
        admissions=live_connections,
        attachments=attachments,
        handoffs=handoffs,
        handoff_watch=handoff_watch,
    )
    return Services(
        pool=pool,
        sessions=sessions,
        messages=messages,
        queue=queue,
        conversations=conversations,
        registry=registry,
        actors=SessionClient(registry),
        agents=AgentStore(pool),
        takeover=takeover,
        notes=NoteStore(pool),
        canned=CannedStore(pool),
        session_creation=AddressLimit(
            limits,
            "session_create",
            chat.session_create_per_ip_max,
            chat.session_create_per_ip_window_seconds,
        ),
        operator_auth_failures=AddressLimit(
            limits,
            "operator_auth_failure",
            settings.server.operator_auth_failures_max,
            settings.server.operator_auth_failure_window_seconds,
        ),
        hub=hub,
        liveness=Liveness(settings.websocket.heartbeat_interval_seconds),
        live_connections=live_connections,
        websockets=websockets,
        callbacks=callbacks,
        metrics=metrics,
        state=state,
        owner=owner,
        attachments=attachments,
        presence=presence,
        handoffs=handoffs,
        handoff_watch=handoff_watch,
    )
