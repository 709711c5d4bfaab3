"""GET /api/inbox/ws: the signed-in agents' WebSocket. It carries every session's events
(new_message, message_status, typing, bot_typing: the shapes of chatd/PROTOCOL.md) from this
process's hub, which hears every process's through LISTEN/NOTIFY. Frames in: the agent's typing
(inbox_socket.py). The sign-in is checked again when any process says the agent's browser
sessions ended (disabled, new password, signed out: a notification), and every
`RECHECK_SECONDS` besides (an idle timeout), so a disabled agent's socket ends at once.
"""

from __future__ import annotations

import time

import trio
from quart import Blueprint, Response, websocket

from chatd.core.frames import encode_event
from chatd.core.staff import Agent
from chatd.errors import Forbidden, Unauthorized
from chatd.http.inbox_socket import AgentTyping, for_agent
from chatd.http.openapi import Doc, documented
from chatd.http.services import Services
from chatd.http.staff_auth import signed_in_agent
from chatd.realtime.hub import INBOX_FEED, Closing, SlowConsumer, Subscriber
from chatd.realtime.presence import keep_online

RECHECK_SECONDS = 15.0
BUFFER = 2_000  # events an agent's socket may fall behind before it is closed (4008)


def inbox_ws_routes(services: Services) -> Blueprint:
    bp = Blueprint("inbox_ws", __name__)

    @bp.websocket("/api/inbox/ws")
    @documented(
        Doc(
            "The inbox's live events, for signed-in agents (chatd/PROTOCOL.md)",
            "inbox",
            auth="staff",
        )
    )
    async def inbox_ws() -> Response | None:
        # Only chatd's own pages: the Origin must be this host (refused before the upgrade).
        origin = websocket.headers.get("Origin", "")
        if origin.split("://", 1)[-1] != websocket.host:
            raise Forbidden(
                "only chatd's own inbox page may open this socket", code="origin_not_allowed"
            )
        agent, _ = await signed_in_agent(services, websocket.cookies, "GET", websocket.headers)
        await websocket.accept()
        subscriber = Subscriber(services.connection_id(), BUFFER)
        typing = AgentTyping(services, agent, subscriber.id)
        services.hub.subscribe(INBOX_FEED, subscriber)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(typing.read_frames, nursery.cancel_scope)
                ttl = services.settings.inbox.presence_ttl_seconds  # online while this is open
                nursery.start_soon(keep_online, services.presence, subscriber.id, agent.id, ttl)
                await _relay(services, subscriber, agent)
                nursery.cancel_scope.cancel()
        finally:
            services.hub.unsubscribe(INBOX_FEED, subscriber)
            await typing.stop()
        return None

    return bp


async def _relay(services: Services, subscriber: Subscriber, agent: Agent) -> None:
    while True:
        try:
            events = await subscriber.get(RECHECK_SECONDS)
        except SlowConsumer:
            await websocket.close(4008, "too far behind; reconnect")
            return
        except Closing:
            await websocket.close(1001, "server stopping")
            return
        signed_out = any(
            e.type == "staff_signed_out" and e.data["agentId"] == agent.id for e in events
        )
        if not events or signed_out:
            try:
                await signed_in_agent(services, websocket.cookies, "GET", websocket.headers)
            except Unauthorized:
                await websocket.close(4001, "signed out")
                return
        if not events:
            await websocket.send(encode_event({"type": "heartbeat", "ts": int(time.time() * 1000)}))
            continue
        for event in events:
            if event.type != "staff_signed_out" and for_agent(event, agent):
                await websocket.send(event.text)
