"""What the HTTP edge needs from the rest of the process, passed in explicitly."""

from __future__ import annotations

from dataclasses import dataclass

from chatd.actors.registry import SessionRegistry
from chatd.actors.session import SessionCommand
from chatd.core.ratelimit import KeyedLimiter
from chatd.core.wire import Limits
from chatd.db.messages import MessageStore
from chatd.db.pool import Pool
from chatd.db.sessions import SessionStore
from chatd.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    pool: Pool
    sessions: SessionStore
    messages: MessageStore
    registry: SessionRegistry[SessionCommand]
    session_creation: KeyedLimiter  # per client IP

    @property
    def limits(self) -> Limits:
        chat = self.settings.chat
        return Limits(chat.max_message_length, chat.metadata_max_bytes, chat.metadata_max_depth)
