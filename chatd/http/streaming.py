"""Request bodies that stream with backpressure (uploads), each with its own size limit.

Quart's reader task takes every body chunk hypercorn has as fast as it comes and appends it to
the request's buffer; a view that reads the body more slowly (an upload written to PostgreSQL
as it arrives) would see that buffer grow to the whole file. For the paths named in
STREAMED_BODIES the reader waits instead while HIGH_WATER bytes are waiting, so hypercorn's
bounded queue fills and the socket stops being read: memory stays flat however large the file.
Their limit is their own (an upload's is far above server.max_body_bytes, which keeps guarding
every JSON body), counted over the whole body, not only what is buffered.

Once the view has answered (after_request: `release_all`), nothing is waited for any more and
what still comes is dropped, so chatd/http/keepalive.py can drain the rest of a refused body
and keep the connection, or close it.
"""

from __future__ import annotations

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
from quart import request
from quart.wrappers import Request
from quart_trio.asgi import TrioASGIHTTPConnection
from quart_trio.wrappers.request import TrioBody
from werkzeug.exceptions import RequestEntityTooLarge

STREAMED_BODIES = "CHATD_STREAMED_BODIES"  # app.config key: {path: max body bytes} (POST only)
HIGH_WATER = 256 * 1024  # bytes a streamed body may hold that its view has not taken yet


class StreamedBody(TrioBody):
    def __init__(self, expected_content_length: int | None, max_content_length: int) -> None:
        super().__init__(expected_content_length, max_content_length)
        self._limit = max_content_length
        self._received = 0
        self._released = False
        self._taken = trio.Event()

    def append(self, data: bytes) -> None:
        if self._released:
            return  # the view has answered: the rest is read only to be dropped
        self._received += len(data)
        if self._received > self._limit and self._must_raise is None:
            self._must_raise = RequestEntityTooLarge()
            self._data.clear()
            self.set_complete()
            return
        super().append(data)

    async def __anext__(self) -> bytes:
        data = await super().__anext__()
        self._taken.set()
        return data

    async def room(self) -> None:
        """Wait while the view has HIGH_WATER bytes still to take (none once released)."""
        while len(self._data) >= HIGH_WATER and not self._released and self._must_raise is None:
            self._taken = trio.Event()
            await self._taken.wait()

    def release(self) -> None:
        self._released = True
        self._data.clear()
        self._taken.set()


def release_current() -> None:
    """after_request: the view is done with its body (see the module's docstring)."""
    body = request.body
    if isinstance(body, StreamedBody):
        body.release()


class StreamingHTTPConnection(TrioASGIHTTPConnection):
    """quart-trio's HTTP connection, with StreamedBody for the configured paths."""

    def _create_request_from_scope(self, send: ASGISendCallable) -> Request:
        created = super()._create_request_from_scope(send)
        limit = self.app.config.get(STREAMED_BODIES, {}).get(created.path)
        if limit is not None and created.method == "POST":
            created.body = StreamedBody(created.content_length, limit)
        return created

    async def handle_messages(  # type: ignore[override]
        self, nursery: trio.Nursery, request: Request, receive: ASGIReceiveCallable
    ) -> None:
        # Quart's loop (quart.asgi.ASGIHTTPConnection.handle_messages) with the wait for room.
        body = request.body
        while True:
            if isinstance(body, StreamedBody):
                await body.room()
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body.set_complete()
            elif message["type"] == "http.disconnect":
                break
        nursery.cancel_scope.cancel()
