"""What the HTTP edge needs from the rest of the process, passed in explicitly."""

from __future__ import annotations

import itertools
import secrets
from collections import Counter
from dataclasses import dataclass, field

from chatd.actors.handle import Reply
from chatd.actors.registry import SessionRegistry
from chatd.actors.session import Send, SessionCommand
from chatd.core.ratelimit import ConnectionLimit, KeyedLimiter
from chatd.core.wire import Limits
from chatd.db.listen import Listener
from chatd.db.messages import MessageStore, NewMessage, StoredMessage
from chatd.db.pool import Pool
from chatd.db.queue import QueueStore
from chatd.db.sessions import SessionStore
from chatd.errors import RateLimited
from chatd.http.origins import RefusedOrigins
from chatd.ops.metrics import Metrics
from chatd.queue.dispatcher import Dispatcher
from chatd.realtime.hub import Hub
from chatd.realtime.liveness import Liveness
from chatd.settings import Settings


@dataclass
class Services:
    settings: Settings
    pool: Pool
    sessions: SessionStore
    messages: MessageStore
    queue: QueueStore
    registry: SessionRegistry[SessionCommand]
    session_creation: KeyedLimiter  # per client IP
    operator_auth_failures: KeyedLimiter  # wrong admin/metrics tokens, per client IP
    hub: Hub
    liveness: Liveness  # heartbeats and silent peers of every WebSocket
    live_connections: ConnectionLimit  # WebSocket + SSE, per client address
    metrics: Metrics
    signature_failures: Counter[str] = field(default_factory=Counter)  # by reason
    dispatcher: Dispatcher | None = None  # set once serving (its target needs the bound URL)
    listener: Listener | None = None  # set once serving
    # Pages that may open a WebSocket; set once serving (the default is the bound origin).
    allowed_origins: tuple[str, ...] = ()
    refused_origins: RefusedOrigins = field(default_factory=RefusedOrigins)  # logged, rate-limited
    close_codes: Counter[int] = field(default_factory=Counter)  # WebSocket closes by code
    websockets: int = 0  # open now
    metrics_urls: list[str] = field(default_factory=list)  # metrics.listen, once bound
    stopping: bool = False  # shutdown began: not ready for new clients
    _connection_ids: itertools.count[int] = field(default_factory=itertools.count)
    _process_tag: str = field(default_factory=lambda: secrets.token_hex(4))

    def connection_id(self) -> str:
        """Unique across processes: a relayed `typing` must not come back to its sender."""
        return f"{self._process_tag}.{next(self._connection_ids)}"

    def admit_connection(self, ip: str) -> None:
        """429 when this address already holds its share of live connections."""
        if self.live_connections.full(ip):
            raise RateLimited(
                f"at most {self.live_connections.limit} live connections per address",
                code="too_many_connections",
                retry_after=5,
            )

    async def send_message(
        self, session_id: str, token_hash: bytes, message: NewMessage
    ) -> StoredMessage:
        """Store a shopper's message through the session's actor (REST and WebSocket alike)."""

        def command(reply: Reply[StoredMessage]) -> Send:
            return Send(token_hash, message, reply)

        return await self.registry.call(session_id, command)

    @property
    def limits(self) -> Limits:
        chat = self.settings.chat
        return Limits(chat.max_message_length, chat.metadata_max_bytes, chat.metadata_max_depth)
