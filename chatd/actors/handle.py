"""Talking to an actor: `cast` (fire into its bounded mailbox) and `call` (await its reply).

A full mailbox is refused at once (Overloaded, 503 with Retry-After) so the server never blocks
on a busy session. A reply travels on a one-shot channel as an `outcome`; if the actor dies before
answering, the channel closes and the caller gets Overloaded instead of waiting out its timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import outcome
import trio

from chatd.errors import Overloaded

C = TypeVar("C")
T = TypeVar("T")

Reply = trio.MemorySendChannel[outcome.Outcome[T]]


class ActorGone(Exception):
    """The actor behind this handle has stopped; ask the registry for a fresh handle."""


class ActorHandle(Generic[C]):
    def __init__(self, mailbox: trio.MemorySendChannel[C], call_timeout: float) -> None:
        self._mailbox = mailbox
        self._call_timeout = call_timeout

    def cast(self, command: C) -> None:
        try:
            self._mailbox.send_nowait(command)
        except trio.WouldBlock:
            raise Overloaded(
                "this chat session is busy; retry shortly", code="session_busy", retry_after=1
            ) from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorGone from None

    async def call(self, make: Callable[[Reply[T]], C]) -> T:
        send, receive = trio.open_memory_channel[outcome.Outcome[T]](1)
        with receive:
            self.cast(make(send))
            try:
                with trio.fail_after(self._call_timeout):
                    result = await receive.receive()
            except trio.EndOfChannel:
                raise Overloaded(
                    "the chat session restarted; retry", code="session_restarting", retry_after=1
                ) from None
            except trio.TooSlowError:
                raise Overloaded(
                    "the chat session did not answer in time; retry",
                    code="session_timeout",
                    retry_after=1,
                ) from None
        return result.unwrap()
