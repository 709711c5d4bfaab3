"""What the HTTP edge needs from the rest of the process, passed in explicitly.

Two rooms: `Services`, the components built once by chatd.wiring.build_services and never replaced, and
its `state`, what only exists once serving (set by app.run_services as each part comes up) plus
the settings a SIGHUP replaces. Counters are in neither: each component keeps its own.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field

from chatd.actors.client import SessionClient
from chatd.actors.registry import SessionRegistry
from chatd.actors.session import SessionCommand
from chatd.core.wire import Limits
from chatd.db.agents import AgentStore
from chatd.db.conversations import ConversationStore
from chatd.db.handoffs import HandoffStore, PresenceStore
from chatd.db.listen import Listener
from chatd.db.messages import MessageStore
from chatd.db.notes import CannedStore, NoteStore
from chatd.db.owner import Owner
from chatd.db.pool import Pool
from chatd.db.queue import QueueStore
from chatd.db.sessions import SessionStore
from chatd.db.takeover import TakeoverStore
from chatd.files.attachments import Attachments
from chatd.http.address_limits import AddressLimit
from chatd.http.origins import RefusedOrigins
from chatd.http.tally import CallbackTally, WebSocketTally
from chatd.ops.handoff_watch import HandoffWatch
from chatd.ops.metrics import Metrics
from chatd.queue.dispatcher import Dispatcher
from chatd.realtime.admission import LiveConnections
from chatd.realtime.hub import Hub
from chatd.realtime.liveness import Liveness
from chatd.realtime.relay import StreamRelay
from chatd.settings import Settings


@dataclass
class ServingState:
    """Written by run_services as each part comes up (and by SIGHUP); requests read it."""

    settings: Settings  # replaced whole by SIGHUP (reload_settings): read it where it is used
    listener: Listener | None = None  # the LISTEN connection, once started
    dispatcher: Dispatcher | None = None  # once delivering (queue.dispatch; needs the bound URL)
    relay: StreamRelay | None = None  # streamed pieces to this process's and others' clients
    # Pages that may open a WebSocket; set once bound (the default is the bound origin).
    allowed_origins: tuple[str, ...] = ()
    metrics_urls: list[str] = field(default_factory=list)  # metrics.listen, once bound
    stopping: bool = False  # shutdown began: not ready for new clients


@dataclass(frozen=True)
class Services:
    """Built once by chatd.wiring.build_services; never replaced."""

    pool: Pool
    sessions: SessionStore
    messages: MessageStore
    queue: QueueStore
    conversations: ConversationStore  # ends and ratings (changes go through the actors)
    registry: SessionRegistry[SessionCommand]  # the actors' supervisor (run by run_services)
    actors: SessionClient  # how the edges talk to the registry's actors
    agents: AgentStore  # staff accounts and their browser sessions
    takeover: TakeoverStore  # the inbox's reads (changes go through `actors`)
    notes: NoteStore  # the inbox's internal notes (staff only)
    canned: CannedStore  # the canned responses admins keep for agents
    session_creation: AddressLimit  # per client IP, cluster-wide
    operator_auth_failures: AddressLimit  # wrong admin/metrics tokens, per client IP, cluster-wide
    hub: Hub
    liveness: Liveness  # heartbeats and silent peers of every WebSocket
    live_connections: LiveConnections  # WebSocket + SSE + long-poll, per address, cluster-wide
    websockets: WebSocketTally
    callbacks: CallbackTally
    metrics: Metrics
    state: ServingState
    attachments: Attachments  # uploads, downloads, signed links
    owner: Owner  # this process's owner lock (the Listener holds it): chatd/db/owner.py
    presence: PresenceStore  # agents online: one row per open inbox socket, with an expiry
    handoffs: HandoffStore  # handoffs waiting for a person; the shopper's contact email
    handoff_watch: HandoffWatch  # tells shoppers and alerts staff when nobody is there
    refused_origins: RefusedOrigins = field(default_factory=RefusedOrigins)  # logged, rate-limited
    _connection_ids: itertools.count[int] = field(default_factory=itertools.count)
    _process_tag: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def settings(self) -> Settings:
        """The settings now (SIGHUP may have replaced them since the last request)."""
        return self.state.settings

    @property
    def process_tag(self) -> str:
        """This process, among every chatd process on the database."""
        return self._process_tag

    def connection_id(self) -> str:
        """Unique across processes: a relayed `typing` must not come back to its sender."""
        return f"{self._process_tag}.{next(self._connection_ids)}"

    @property
    def limits(self) -> Limits:
        chat = self.settings.chat
        return Limits(
            chat.max_message_length,
            chat.metadata_max_bytes,
            chat.metadata_max_depth,
            self.settings.attachments.max_files_per_message,
        )
