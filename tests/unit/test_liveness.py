"""One timer for every WebSocket (chatd/realtime/liveness.py): what is due when."""

from __future__ import annotations

from dataclasses import dataclass, field

from chatd.realtime.liveness import Liveness

INTERVAL = 30.0


@dataclass(eq=False)
class Peer:
    last_sent: float = 0.0
    last_received: float = 0.0
    told: list[str] = field(default_factory=list)

    def heartbeat_due(self) -> None:
        self.told.append("heartbeat")

    def silent(self) -> None:
        self.told.append("silent")


def test_a_heartbeat_is_due_after_an_interval_without_a_frame_out() -> None:
    liveness = Liveness(INTERVAL)
    quiet, busy = Peer(), Peer(last_sent=10.0)
    liveness.watch(quiet)
    liveness.watch(busy)
    liveness.check(29.9)
    assert (quiet.told, busy.told) == ([], [])
    liveness.check(30.0)
    assert (quiet.told, busy.told) == (["heartbeat"], [])


def test_a_peer_silent_for_two_intervals_is_gone_and_gets_no_heartbeat() -> None:
    liveness = Liveness(INTERVAL)
    peer = Peer(last_received=1.0)
    liveness.watch(peer)
    liveness.check(60.9)
    assert peer.told == ["heartbeat"]
    liveness.check(61.0)
    assert peer.told == ["heartbeat", "silent"]


def test_a_forgotten_connection_is_not_looked_at() -> None:
    liveness = Liveness(INTERVAL)
    peer = Peer()
    liveness.watch(peer)
    liveness.forget(peer)
    liveness.forget(peer)  # twice is harmless (a connection ending after shutdown cleared it)
    liveness.check(100.0)
    assert (peer.told, len(liveness)) == ([], 0)


def test_the_tick_is_a_fifth_of_the_interval_at_most_a_second() -> None:
    assert Liveness(30.0).tick == 1.0
    assert Liveness(0.5).tick == 0.1
