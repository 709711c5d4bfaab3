"""CORS for the shopper's API, so a widget on the shop's own domain can call chatd's (chatd's own
widget, and n8n's @n8n/chat at /api/n8n-chat).

The same allow-list as the WebSocket's (websocket.allowed_origins; by default chatd's own
origin): an allowed Origin gets it echoed back, anything else gets no CORS headers and the
browser keeps the answer from the page. n8n's callback is not a browser endpoint: no CORS.
A refused preflight (sent only by another origin's page) is reported to `on_refused`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from quart import Response, request

from chatd.core.frames import origin_allowed

PREFIXES = ("/api/chat/", "/api/n8n-chat")  # chatd's widget's API, and n8n's widget's endpoint
NOT_FOR_BROWSERS = ("/api/chat/webhook",)
HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Last-Event-ID, X-Chatd-Identity",
    "Access-Control-Expose-Headers": "Retry-After",
    "Access-Control-Max-Age": "600",
}


def cors_headers(
    allowed: Callable[[], Collection[str]],
    on_refused: Callable[[str], None],
) -> Callable[[Response], Awaitable[Response]]:
    """An after_request hook; `allowed` gives the allow-list (known once the socket is bound);
    `on_refused` hears of each origin refused at a preflight."""

    async def add(response: Response) -> Response:
        path = request.path
        if not path.startswith(PREFIXES) or path.startswith(NOT_FOR_BROWSERS):
            return response
        response.vary.add("Origin")
        origin = request.headers.get("Origin")
        if origin and origin_allowed(origin, allowed()):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers.update(HEADERS)
        elif origin and is_preflight():
            on_refused(origin)
        return response

    return add


def is_preflight() -> bool:
    """A browser's CORS preflight: a same-origin page never sends one (so this is no false alarm,
    unlike a plain request's Origin header, which same-origin POSTs carry too)."""
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
