"""The garbage-collection policy (chatd/ops/gc_policy.py) with real, short intervals."""

from __future__ import annotations

import gc
import weakref

import pytest
import trio

from chatd.ops.gc_policy import run_gc_policy


class Cycle:
    def __init__(self) -> None:
        self.me = self


async def test_survivors_are_frozen_and_cycles_collected_in_the_full_pass() -> None:
    gc.disable()  # only the policy collects: a young collection would free the cycle first
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(run_gc_policy, 0.01, 0.2, 0)
            await trio.sleep(0.05)
            assert gc.get_freeze_count() > 0  # the collector no longer walks what was there
            cycle = weakref.ref(Cycle())  # garbage only a collection frees
            await trio.sleep(0.03)
            assert cycle() is not None
            await trio.sleep(0.5)  # the full pass has come round
            assert cycle() is None
            nursery.cancel_scope.cancel()
    finally:
        gc.enable()
    assert gc.get_freeze_count() == 0  # stopped: everything is the collector's again


@pytest.mark.parametrize("freeze_interval", [0.01, 0])
async def test_the_young_threshold_holds_while_the_policy_runs(freeze_interval: float) -> None:
    before = gc.get_threshold()
    async with trio.open_nursery() as nursery:
        await nursery.start(run_gc_policy, freeze_interval, 0.2, 50_000)
        await trio.sleep(0.05)
        assert gc.get_threshold() == (50_000, *before[1:])
        nursery.cancel_scope.cancel()
    assert gc.get_threshold() == before


async def test_zero_leaves_the_collector_alone() -> None:
    before = gc.get_threshold()
    async with trio.open_nursery() as nursery:
        await nursery.start(run_gc_policy, 0, 0.2, 0)
        await trio.sleep(0.05)
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == before
        nursery.cancel_scope.cancel()
