"""The session registry: actors on demand, crash isolation with restart, idle stop, bounded mailboxes.

The actors here are small counting actors, so a crash can be caused on purpose; the registry
under test is the real one that supervises SessionActor in chatd.
"""

from __future__ import annotations

from dataclasses import dataclass

import outcome
import pytest
import trio

from chatd.actors.handle import Reply
from chatd.actors.registry import SessionRegistry
from chatd.errors import Overloaded


@dataclass(frozen=True)
class Add:
    amount: int
    reply: Reply[int]


@dataclass(frozen=True)
class Crash:
    reply: Reply[int]


@dataclass(frozen=True)
class Block:
    until: trio.Event
    reply: Reply[int]


Command = Add | Crash | Block


class Counter:
    """Keeps a running total; crashes on Crash (after answering nothing)."""

    instances = 0

    def __init__(self, mailbox: trio.MemoryReceiveChannel[Command], idle: float) -> None:
        Counter.instances += 1
        self.mailbox = mailbox
        self.idle = idle
        self.total = 0

    async def run(self) -> None:
        while True:
            with trio.move_on_after(self.idle):
                command = await self.mailbox.receive()
                with command.reply:
                    match command:
                        case Add(amount=amount):
                            self.total += amount
                            command.reply.send_nowait(outcome.Value(self.total))
                        case Crash():
                            raise RuntimeError("boom")
                        case Block(until=until):
                            await until.wait()
                            command.reply.send_nowait(outcome.Value(self.total))
                continue
            return


def make_registry(idle: float = 60.0, mailbox: int = 8) -> SessionRegistry[Command]:
    return SessionRegistry[Command](
        lambda _sid, box: Counter(box, idle),
        mailbox_size=mailbox,
        call_timeout=5,
        restart_backoff_max=0.05,
    )


async def test_a_crashed_actor_restarts_without_disturbing_its_neighbours(
    nursery: trio.Nursery,
) -> None:
    registry = make_registry()
    await nursery.start(registry.run)
    assert await registry.call("a", lambda r: Add(5, r)) == 5
    assert await registry.call("b", lambda r: Add(7, r)) == 7
    with pytest.raises(Overloaded) as crashed:
        await registry.call("a", Crash)
    assert crashed.value.code == "session_restarting"  # answered at once, not after a timeout
    assert await registry.call("b", lambda r: Add(1, r)) == 8  # neighbour kept its state
    assert await registry.call("a", lambda r: Add(1, r)) == 1  # restarted fresh
    stats = registry.statistics()
    assert (stats.live_actors, stats.restarts) == (2, 1)


async def test_commands_queued_behind_a_crash_are_still_handled(nursery: trio.Nursery) -> None:
    registry = make_registry()
    await nursery.start(registry.run)
    results: list[object] = []

    async def call(make: object) -> None:
        try:
            results.append(await registry.call("a", make))  # type: ignore[arg-type]
        except Overloaded as exc:
            results.append(exc.code)

    async with trio.open_nursery() as callers:
        callers.start_soon(call, Crash)
        await trio.sleep(0.01)
        callers.start_soon(call, lambda r: Add(3, r))
    assert results == ["session_restarting", 3]


async def test_idle_actors_stop_and_respawn_on_demand(nursery: trio.Nursery) -> None:
    registry = make_registry(idle=0.05)
    await nursery.start(registry.run)
    before = Counter.instances
    assert await registry.call("a", lambda r: Add(2, r)) == 2
    assert registry.statistics().live_actors == 1
    with trio.fail_after(2):
        while registry.statistics().live_actors:
            await trio.sleep(0.01)
    assert await registry.call("a", lambda r: Add(2, r)) == 2  # a fresh actor: state starts over
    assert Counter.instances == before + 2


async def test_a_full_mailbox_is_refused_at_once(nursery: trio.Nursery) -> None:
    registry = make_registry(mailbox=2)
    await nursery.start(registry.run)
    release = trio.Event()
    async with trio.open_nursery() as callers:
        callers.start_soon(registry.call, "a", lambda r: Block(release, r))
        await trio.sleep(0.01)  # the actor now holds Block; the mailbox is empty
        callers.start_soon(registry.call, "a", lambda r: Add(1, r))
        callers.start_soon(registry.call, "a", lambda r: Add(1, r))
        await trio.sleep(0.01)
        with trio.fail_after(0.5), pytest.raises(Overloaded) as full:
            await registry.call("a", lambda r: Add(1, r))
        assert (full.value.code, full.value.retry_after) == ("session_busy", 1)
        assert await registry.call("b", lambda r: Add(1, r)) == 1  # other sessions unaffected
        release.set()
