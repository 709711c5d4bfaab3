"""Browser origins the allow-list (websocket.allowed_origins) refuses, logged for the operator.

A page that may not chat fails quietly in the browser (the widget falls back from WebSocket to
SSE, or the browser hides a CORS answer from the page), so the server says so in its log.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import structlog

from chatd.core.ratelimit import KeyedLimiter, SlidingWindow

log = structlog.get_logger(__name__)

CONFIG_KEY = "websocket.allowed_origins"
MAX_ORIGIN_CHARS = 200  # the header is the client's: its length too
Refusal = Literal["websocket_origin_refused", "cors_origin_refused"]


class RefusedOrigins:
    """Logs each refused origin at most once a `window` (seconds), and at most `limit` lines
    per window in all: made-up Origin headers fill neither the log nor memory."""

    def __init__(self, window: float = 60.0, limit: int = 20) -> None:
        self._each = KeyedLimiter(1, window, sweep_at=limit)
        self._all = SlidingWindow(limit, window)

    def refused(
        self, event: Refusal, origin: str | None, allowed: Collection[str], now: float
    ) -> None:
        shown = None if origin is None else origin[:MAX_ORIGIN_CHARS]
        key = f"{event} {shown}"
        if self._each.retry_after(key, now) is not None or self._all.retry_after(now) is not None:
            return
        self._each.record(key, now)
        self._all.record(now)
        log.warning(event, origin=shown, config_key=CONFIG_KEY, allowed_origins=list(allowed))

    def __len__(self) -> int:
        """Origins remembered (memory stays bounded)."""
        return len(self._each)
