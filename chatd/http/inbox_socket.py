"""What an inbox socket does besides relaying events (routes_inbox_ws.py): the agent's typing in
from the page, passed on to the shopper as `bot_typing` with the agent's name (through
PostgreSQL, so a shopper on any process sees it); and the news meant for one agent alone.

A typing frame counts only from the agent holding the conversation, and goes on at most once a
second per conversation while its value stays the same (TypingGate); when the socket ends while
the agent was typing somewhere, "stopped" follows, so a closed tab leaves no one "typing".
"""

from __future__ import annotations

import contextlib
from typing import Any

import structlog
import trio
from quart import websocket

from chatd.core.frames import encode_event
from chatd.core.inbox_live import TypingGate, parse_inbox_frame
from chatd.core.staff import Agent
from chatd.db.reads import ReadStore
from chatd.errors import ClientError, DatabaseUnavailable
from chatd.http.services import Services
from chatd.realtime.hub import Event
from chatd.realtime.router import STAFF_ONLY  # each names its agent

log = structlog.get_logger(__name__)

STOP_TIMEOUT = 2.0  # seconds for the last "stopped typing" as the socket ends


def for_agent(event: Event, agent: Agent) -> bool:
    """An event this agent's socket may be sent (news of another agent's reads is not)."""
    return event.type not in STAFF_ONLY or event.data.get("agentId") == agent.id


class AgentTyping:
    def __init__(self, services: Services, agent: Agent, connection_id: str) -> None:
        self._services = services
        self._agent = agent
        self._origin = connection_id  # not echoed to this socket
        self._reads = ReadStore(services.pool)
        self._gate = TypingGate()

    async def read_frames(self, scope: trio.CancelScope) -> None:
        """Frames from the page until the socket ends (which ends the relay: `scope`)."""
        try:
            while True:
                data = await websocket.receive()
                try:
                    await self._frame(data)
                except ClientError as exc:
                    await websocket.send(
                        encode_event({"type": "error", "code": exc.code, "message": exc.message})
                    )
                except DatabaseUnavailable:
                    log.debug("inbox_typing_lost")  # a hint: the next frame tries again
        finally:
            scope.cancel()

    async def _frame(self, data: str | bytes) -> None:
        frame = parse_inbox_frame(data)
        if not self._gate.allow(frame.sessionId, frame.isTyping, trio.current_time()):
            return
        if await self._reads.holder(frame.sessionId) != self._agent.id:
            return  # only the agent holding it types to the shopper; not an error: it may
            # have been handed back a moment ago
        await self._relay(frame.sessionId, frame.isTyping)

    async def _relay(self, session_id: str, is_typing: bool) -> None:
        event: dict[str, Any] = {
            "type": "bot_typing",
            "sessionId": session_id,
            "isTyping": is_typing,
            "agentName": self._agent.name,
            "origin": self._origin,
        }
        with contextlib.suppress(DatabaseUnavailable):  # a lost typing hint is harmless
            await self._services.messages.notify_event(event)
            self._gate.relayed(session_id, is_typing)

    async def stop(self) -> None:
        """The socket ended: wherever the agent was typing, it stopped."""
        with trio.move_on_after(STOP_TIMEOUT) as scope:
            scope.shield = True
            for session_id in list(self._gate.typing):
                await self._relay(session_id, False)
