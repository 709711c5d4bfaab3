"""The one-line state systemd shows under `systemctl status chatd` (sd_notify STATUS=)."""

from __future__ import annotations

import trio

from chatd.db.health import QueueSnapshot
from chatd.db.listen import Listener
from chatd.ops.metrics import Metrics
from chatd.ops.sd_notify import Notifier
from chatd.realtime.hub import Hub

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


async def run_status(
    notifier: Notifier, metrics: Metrics, hub: Hub, listener: Listener, stop: trio.Event
) -> None:
    """Refresh STATUS= every few seconds (a database outage shows here, not as a stop)."""
    if not notifier.enabled:
        return
    while True:
        await metrics.refresh()  # the queue snapshot /metrics shows, read for both
        await notifier.status(
            status_line(
                metrics.snapshot,
                connections=hub.connections,
                listening=listener.connected,
                stopping=stop.is_set(),
            )
        )
        await trio.sleep(STATUS_INTERVAL_SECONDS)
