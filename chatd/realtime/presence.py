"""An agent is online while their inbox WebSocket is open: each socket keeps one row in
chat_agent_presence, renewed well within its TTL and deleted when the socket ends. A process
killed on the spot cannot delete its rows; they expire after the TTL, so every process reads
the same presence from the database (RELIABILITY.md 13: nothing lives only in a process)."""

from __future__ import annotations

import structlog
import trio

from chatd.db.handoffs import PresenceStore
from chatd.errors import ChatdError

log = structlog.get_logger(__name__)

RENEWALS_PER_TTL = 3  # two renewals may fail (the database away) before the row expires
LEAVE_TIMEOUT_SECONDS = 2.0


async def keep_online(
    store: PresenceStore, connection_id: str, agent_id: str, ttl_seconds: float
) -> None:
    """Mark the agent online until cancelled (the socket's end), then take the mark back."""
    try:
        while True:
            try:
                await store.enter(connection_id, agent_id, ttl_seconds)
            except ChatdError as exc:  # the database is away: the row expires, try again
                log.warning("presence_renew_failed", error=str(exc))
            await trio.sleep(ttl_seconds / RENEWALS_PER_TTL)
    finally:
        # Shielded, bounded: the socket is ending (often by cancellation); if this fails the
        # row expires on its own.
        with trio.move_on_after(LEAVE_TIMEOUT_SECONDS) as scope:
            scope.shield = True
            try:
                await store.leave(connection_id)
            except ChatdError as exc:
                log.warning("presence_leave_failed", error=str(exc))
