"""The one-line state systemd shows under `systemctl status chatd` (sd_notify STATUS=)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from chatd.ops.metrics import QueueSnapshot
from chatd.ops.sd_notify import Notifier

if TYPE_CHECKING:
    from chatd.http.services import Services

STATUS_INTERVAL_SECONDS = 5.0


def status_line(
    snapshot: QueueSnapshot | None, *, connections: int, listening: bool, stopping: bool
) -> str:
    if stopping:
        return f"stopping: {connections} connections closing"
    if snapshot is None:
        return f"serving, database unreachable (retrying); {connections} connections"
    state = "serving" if listening else "serving, LISTEN reconnecting"
    return (
        f"{state}; {connections} connections, {snapshot.active_sessions} active sessions;"
        f" queue {snapshot.pending} pending (oldest due {snapshot.oldest_due_seconds:.0f}s),"
        f" {snapshot.processing} in flight, {snapshot.dead} dead; database ok"
    )


async def run_status(services: Services, notifier: Notifier) -> None:
    """Refresh STATUS= every few seconds (a database outage shows here, not as a stop)."""
    if not notifier.enabled:
        return
    while True:
        await services.metrics.refresh(services.pool)
        listener = services.listener
        await notifier.status(
            status_line(
                services.metrics.snapshot,
                connections=services.hub.connections,
                listening=listener is not None and listener.connected,
                stopping=services.stopping,
            )
        )
        await trio.sleep(STATUS_INTERVAL_SECONDS)
