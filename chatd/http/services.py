"""What the HTTP edge needs from the rest of the process, passed in explicitly."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from chatd.actors.registry import SessionRegistry
from chatd.actors.session import SessionCommand
from chatd.core.ratelimit import KeyedLimiter
from chatd.core.wire import Limits
from chatd.db.messages import MessageStore
from chatd.db.pool import Pool
from chatd.db.queue import QueueStore
from chatd.db.sessions import SessionStore
from chatd.queue.dispatcher import Dispatcher
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
    signature_failures: Counter[str] = field(default_factory=Counter)  # by reason
    dispatcher: Dispatcher | None = None  # set once serving (its target needs the bound URL)

    @property
    def limits(self) -> Limits:
        chat = self.settings.chat
        return Limits(chat.max_message_length, chat.metadata_max_bytes, chat.metadata_max_depth)
