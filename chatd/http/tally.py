"""What the HTTP edge counts itself: WebSockets open and how chatd closed them, callbacks refused.

Each route keeps its tally and hands out frozen statistics(); the metrics collector and the admin
overview read those. This module imports nothing of the edge, so ops/ can read it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class WebSocketStatistics:
    open: int  # accepted and not yet ended
    close_codes: Mapping[int, int]  # closes chatd initiated, by close code (PROTOCOL.md)


class WebSocketTally:
    def __init__(self) -> None:
        self._open = 0
        self._close_codes: Counter[int] = Counter()

    def statistics(self) -> WebSocketStatistics:
        return WebSocketStatistics(self._open, dict(sorted(self._close_codes.items())))

    def opened(self) -> None:
        self._open += 1

    def ended(self) -> None:
        self._open -= 1

    def closed(self, code: int) -> None:
        """chatd closed one with `code` (it ends too: ended() follows)."""
        self._close_codes[code] += 1


@dataclass(frozen=True)
class CallbackStatistics:
    signature_failures: Mapping[str, int]  # callbacks refused by the signature check, by reason


class CallbackTally:
    def __init__(self) -> None:
        self._signature_failures: Counter[str] = Counter()

    def statistics(self) -> CallbackStatistics:
        return CallbackStatistics(dict(sorted(self._signature_failures.items())))

    def signature_refused(self, reason: str) -> None:
        self._signature_failures[reason] += 1
