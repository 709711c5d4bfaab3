"""This process's owner token: a random number whose advisory lock the LISTEN connection holds
while the process lives (chatd/db/listen.py), so the rest of the cluster can tell at once that a
process died: its connection, and with it the lock, goes with it.

What carries the token: the jobs it claimed (a job whose owner's lock is gone is rescued at once,
not when its lease ends) and its rows of live connections per address (swept when the lock goes).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

# The advisory-lock key space of owner tokens: pg_advisory_lock(OWNER_LOCK_NAMESPACE, token) is
# pg_locks' (classid, objid, objsubid) = (namespace, token, 2). "chat" in ASCII; the queries in
# sql/queries/queue.sql and limits.sql name the same number.
OWNER_LOCK_NAMESPACE = 0x63686174


def new_token() -> int:
    """Positive, so pg_locks' unsigned objid reads the same number."""
    return secrets.randbelow(2**31 - 1) + 1


class Owner:
    """The token, and whether its lock is held right now (set by the Listener)."""

    def __init__(self, token: int | None = None) -> None:
        self.token = token if token is not None else new_token()
        self.held = False
        self._on_held: list[Callable[[], None]] = []

    def current(self) -> int | None:
        """The token to record on a claim: None while the lock is not held, so such a claim
        is rescued by its lease only, never mistaken for a dead owner's."""
        return self.token if self.held else None

    def on_held(self, callback: Callable[[], None]) -> None:
        """Call `callback` (it must not block) each time the lock is taken, after a reconnect
        too: whatever was registered under the token meanwhile may have been swept."""
        self._on_held.append(callback)

    def taken(self) -> None:
        self.held = True
        for callback in self._on_held:
            callback()

    def lost(self) -> None:
        self.held = False
