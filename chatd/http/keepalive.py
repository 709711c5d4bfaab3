"""An early answer (413, 401, ...) leaves its HTTP/1.1 connection usable, or really closes it.

hypercorn reuses a keep-alive connection only once the request body has been read to its end;
otherwise it closes the connection, from inside the app's last `send`. On the way it hands the
app an `http.disconnect`, on which quart-trio cancels the very task that is in that `send`: the
close is cut off, the socket stays open with nobody reading it, and the client's next request on
it hangs. So before a response starts, the rest of the body is read (by the app's own reader,
which drops it) up to a bound; past the bound the response says `Connection: close`. And the last
`send` is shielded, so hypercorn finishes recycling or closing the connection: without that, the
same cancel also lands in the restart of the connection's keep-alive timer after any response, so
an idle connection was never closed, and at shutdown hypercorn waited out the whole
graceful_timeout for it (Ctrl-C took 10 s once anything had been requested).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import structlog
import trio
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
    HTTPResponseStartEvent,
    Scope,
)

log = structlog.get_logger(__name__)

# A refused body up to this much more is read and dropped, so the connection can be reused;
# a larger or slower one is answered with Connection: close instead (as nginx's lingering close).
DRAIN_MAX_BYTES = 4 << 20
DRAIN_MAX_SECONDS = 2.0
# The last send of a response recycles or closes the connection: quick, but never unbounded.
FINISH_MAX_SECONDS = 10.0

ASGIApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]


class _RequestBody:
    """What has come of the request body, as seen through the app's `receive`."""

    def __init__(self, declared: int | None) -> None:
        self.declared = declared
        self.read = 0
        self.done = False
        self._progress = trio.Event()

    def saw(self, message: ASGIReceiveEvent) -> None:
        if message["type"] == "http.request":
            self.read += len(message.get("body", b""))
            self.done = not message.get("more_body", False)
        elif message["type"] == "http.disconnect":
            self.done = True
        self._progress.set()
        self._progress = trio.Event()

    async def drained(self, max_bytes: int, max_seconds: float) -> bool:
        """Wait while the app's reader reads the body to its end: False if that would take more
        than `max_bytes` more or `max_seconds`."""
        if self.declared is not None and self.declared - self.read > max_bytes:
            return False
        limit = self.read + max_bytes
        with trio.move_on_after(max_seconds):
            while not self.done and self.read <= limit:
                await self._progress.wait()
        return self.done


def _declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # h11 refuses such a request before it gets here
    return None


class KeepConnectionUsable:
    """ASGI middleware around the app (`app.asgi_app = KeepConnectionUsable(app.asgi_app)`)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        drain_max_bytes: int = DRAIN_MAX_BYTES,
        drain_max_seconds: float = DRAIN_MAX_SECONDS,
    ) -> None:
        self._app = app
        self._drain_max_bytes = drain_max_bytes
        self._drain_max_seconds = drain_max_seconds

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http" or scope["http_version"] not in ("1.0", "1.1"):
            await self._app(scope, receive, send)  # HTTP/2 ends a stream, not the connection
            return
        body = _RequestBody(_declared_length(scope["headers"]))

        async def observed_receive() -> ASGIReceiveEvent:
            message = await receive()
            body.saw(message)
            return message

        async def finishing_send(message: ASGISendEvent) -> None:
            if (
                message["type"] == "http.response.start"
                and not body.done
                and not await body.drained(self._drain_max_bytes, self._drain_max_seconds)
            ):
                log.debug("request_body_not_drained", bytes_read=body.read)
                closing: HTTPResponseStartEvent = {
                    **message,
                    "headers": [*message["headers"], (b"connection", b"close")],
                }
                message = closing
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.move_on_after(FINISH_MAX_SECONDS) as finishing:
                    finishing.shield = True
                    await send(message)
                return
            await send(message)

        await self._app(scope, observed_receive, finishing_send)
