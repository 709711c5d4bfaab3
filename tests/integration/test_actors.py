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
            with trio.move_on_after(self.idle) as idle:
                command = await self.mailbox.receive()
            if idle.cancelled_caught:
                return
            if not command.reply.take():
                continue  # withdrawn by its caller
            with command.reply:
                match command:
                    case Add(amount=amount):
                        self.total += amount
                        command.reply.send(outcome.Value(self.total))
                    case Crash():
                        raise RuntimeError("boom")
                    case Block(until=until):
                        await until.wait()
                        command.reply.send(outcome.Value(self.total))


def make_registry(
    idle: float = 60.0, mailbox: int = 8, call_timeout: float = 5
) -> SessionRegistry[Command]:
    return SessionRegistry[Command](
        lambda _sid, box: Counter(box, idle),
        mailbox_size=mailbox,
        call_timeout=call_timeout,
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


async def test_a_taken_command_is_waited_for_past_the_call_timeout(nursery: trio.Nursery) -> None:
    registry = make_registry(call_timeout=0.1)
    await nursery.start(registry.run)
    release = trio.Event()
    nursery.start_soon(_release_after, release, 0.5)
    started = trio.current_time()
    assert await registry.call("a", lambda r: Block(release, r)) == 0  # its outcome, not a 503
    assert trio.current_time() - started >= 0.5


async def test_a_command_never_taken_is_withdrawn_and_skipped(nursery: trio.Nursery) -> None:
    registry = make_registry(call_timeout=0.1)
    await nursery.start(registry.run)
    release = trio.Event()
    async with trio.open_nursery() as callers:
        callers.start_soon(registry.call, "a", lambda r: Block(release, r))
        await trio.sleep(0.01)  # the actor holds Block
        with pytest.raises(Overloaded) as late:
            await registry.call("a", lambda r: Add(5, r))  # waits in the mailbox, then gives up
        assert late.value.code == "session_timeout"
        release.set()
    assert await registry.call("a", lambda r: Add(1, r)) == 1  # the 5 was never added


async def test_a_caller_cancelled_while_waiting_withdraws_its_command(
    nursery: trio.Nursery,
) -> None:
    registry = make_registry()
    await nursery.start(registry.run)
    release = trio.Event()
    async with trio.open_nursery() as callers:
        callers.start_soon(registry.call, "a", lambda r: Block(release, r))
        await trio.sleep(0.01)
        with trio.move_on_after(0.05):
            await registry.call("a", lambda r: Add(5, r))
        release.set()
    assert await registry.call("a", lambda r: Add(1, r)) == 1


async def test_a_caller_gone_before_the_answer_does_not_crash_the_actor(
    nursery: trio.Nursery,
) -> None:
    registry = make_registry()
    await nursery.start(registry.run)
    release = trio.Event()
    with trio.move_on_after(0.05):  # taken, then its caller leaves
        await registry.call("a", lambda r: Block(release, r))
    release.set()  # the actor answers nobody
    await trio.sleep(0.01)
    assert await registry.call("a", lambda r: Add(2, r)) == 2
    assert registry.statistics().restarts == 0


async def _release_after(event: trio.Event, seconds: float) -> None:
    await trio.sleep(seconds)
    event.set()
