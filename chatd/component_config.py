"""Settings turned into each component's own config (pool, dispatcher, sender, HTTP servers)."""

from __future__ import annotations

import logging
import os
import socket

from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets

from chatd.core.frames import loopback_spellings, normalize_origin
from chatd.core.n8n_request import n8n_target
from chatd.http.routes_demo_bot import DEMO_WEBHOOK_PATH
from chatd.ops.sd_notify import activation_binds
from chatd.queue.dispatcher import DispatchConfig
from chatd.queue.sender import SenderConfig
from chatd.settings import Settings


def dispatch_config(settings: Settings, base_url: str) -> DispatchConfig:
    """`base_url`: how n8n reaches us (public_url, else the address we bound)."""
    n8n, queue = settings.n8n, settings.queue
    target = n8n_target(
        n8n.webhook_url or f"{base_url}{DEMO_WEBHOOK_PATH}",
        basic_auth_user=n8n.basic_auth_user,
        basic_auth_password=n8n.basic_auth_password,
        auth_header_name=n8n.auth_header_name,
        auth_header_value=n8n.auth_header_value,
    )
    return DispatchConfig(
        target_url=target.url,
        concurrency=queue.concurrency,
        lease_seconds=queue.lease_seconds,
        poll_interval=queue.poll_interval_seconds,
        retry_base_delay=queue.retry_base_delay_seconds,
        retry_max_delay=queue.retry_max_delay_seconds,
        callback_url=f"{base_url}/api/chat/webhook",
        mode=n8n.mode,
        secrets=n8n.secrets,
        fallback_reply=n8n.fallback_reply,
        max_reply_length=n8n.max_reply_length,
        grace_seconds=settings.server.shutdown_grace_seconds,
        auth_headers=target.auth_headers,
    )


def sender_config(settings: Settings) -> SenderConfig:
    n8n = settings.n8n
    return SenderConfig(
        n8n.timeout_seconds,
        n8n.connect_timeout_seconds,
        n8n.max_response_bytes,
        n8n.stream_idle_timeout_seconds,
        n8n.stream_max_seconds,
    )


class _HypercornConfig(HypercornConfig):
    """hypercorn's config, with a send timeout on every TCP connection it accepts.

    A peer that stops reading (or vanishes) leaves a frame half sent, and hypercorn shields
    its socket writes from cancellation, so no timer of ours can end that wait. The kernel can:
    TCP_USER_TIMEOUT aborts a connection whose data stays unacknowledged, or unsent behind a
    zero window, for that long; the write then fails and hypercorn closes the connection.
    Set on the listening socket, it is inherited by every accepted one.
    """

    send_timeout_seconds = 10.0

    def create_sockets(self) -> Sockets:
        sockets = super().create_sockets()
        option = getattr(socket, "TCP_USER_TIMEOUT", None)  # Linux
        for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
            if option is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                milliseconds = max(1, round(self.send_timeout_seconds * 1000))
                sock.setsockopt(socket.IPPROTO_TCP, option, milliseconds)
        return sockets


def hypercorn_config(settings: Settings) -> HypercornConfig:
    config = _HypercornConfig()
    # systemd/chatd.socket may hand us the listening socket (socket activation).
    activated = activation_binds(os.environ, os.getpid())
    config.bind = activated or [f"{settings.server.host}:{settings.server.port}"]
    config.graceful_timeout = settings.server.shutdown_grace_seconds
    config.send_timeout_seconds = settings.server.send_timeout_seconds
    config.keep_alive_timeout = settings.server.keep_alive_timeout_seconds
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # one handler: ours (chatd/logs.py)
    config.websocket_max_message_size = settings.websocket.max_frame_bytes  # larger: close 1009
    return config


def metrics_hypercorn_config(settings: Settings) -> HypercornConfig:
    config = hypercorn_config(settings)
    config.bind = [settings.metrics.listen]
    return config


def allowed_origins(settings: Settings, urls: list[str]) -> tuple[str, ...]:
    """The configured allow-list, else this server's own public origin(s).

    In demo mode (no n8n.webhook_url) a loopback origin counts under each of its names, so the
    demo opened at http://localhost:8000 chats over its WebSocket like at http://127.0.0.1:8000.
    """
    if settings.websocket.origins:
        configured = settings.websocket.origins
    elif settings.server.public_url:
        configured = (settings.server.public_url,)
    elif not settings.n8n.webhook_url:
        configured = tuple(spelling for url in urls for spelling in loopback_spellings(url))
    else:
        configured = tuple(urls)
    normalized = (o for o in map(normalize_origin, configured) if o is not None)
    return tuple(dict.fromkeys(normalized))
