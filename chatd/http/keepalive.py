"""Keep-alive connections that close: the last `send` of each HTTP response is shielded.

Quart-Trio cancels a request's nursery as soon as it receives `http.disconnect`, and hypercorn
delivers that message from inside the app's final `send`, before it restarts the connection's
keep-alive timer. The cancel lands in that restart, so the connection is left without its timer:
hypercorn never closes it when idle, and at shutdown it waits out the whole graceful_timeout for
it (Ctrl-C took 10 s once anything had been requested: the demo bot's webhook calls, a browser).
Shielded, hypercorn finishes its bookkeeping; its socket writes are bounded by TCP_USER_TIMEOUT
(component_config.py), and the rest does not wait on the peer.
"""

from __future__ import annotations

import trio
from hypercorn.typing import (
    ASGIFramework,
    ASGIReceiveCallable,
    ASGISendCallable,
    ASGISendEvent,
    Scope,
)


class KeepAliveGuard:
    """Wraps an ASGI app; WebSocket and lifespan traffic pass through untouched."""

    def __init__(self, app: ASGIFramework) -> None:
        self._app = app

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_last_shielded(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await self._app(scope, receive, send_last_shielded)
