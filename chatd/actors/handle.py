"""Talking to an actor: `cast` (fire into its bounded mailbox) and `call` (await its reply).

A full mailbox is refused at once (Overloaded, 503 with Retry-After) so the server never blocks
on a busy session. The call timeout bounds only the wait in the mailbox: a command the actor has
taken is waited for to its outcome (its work is bounded by the database's own timeouts), so the
answer is the truth about it; one not taken when its caller stops waiting is withdrawn, and the
actor skips it, so a 503 means nothing was done. The actor takes a command synchronously as it
receives it, and the caller withdraws synchronously: in Trio exactly one of them wins.

A reply travels on a one-shot channel as an `outcome`; if the actor dies before answering, the
channel closes and the caller gets Overloaded instead of waiting on. A caller that has gone
(hung up, cancelled) is no error of the actor's: its reply is dropped.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Generic, TypeVar

import outcome
import structlog
import trio

from chatd.errors import Overloaded

log = structlog.get_logger(__name__)

C = TypeVar("C")
T = TypeVar("T")


class ActorGone(Exception):
    """The actor behind this handle has stopped; ask the registry for a fresh handle."""


class _State(enum.Enum):
    WAITING = "waiting"  # in the mailbox
    TAKEN = "taken"  # the actor is on it: the caller waits for the outcome
    WITHDRAWN = "withdrawn"  # the caller stopped waiting first: the actor skips it


class Reply(Generic[T]):
    """The caller's end of a command, held by the actor: take it, then send its outcome once."""

    def __init__(self, channel: trio.MemorySendChannel[outcome.Outcome[T]]) -> None:
        self._channel = channel
        self._state = _State.WAITING

    def take(self) -> bool:
        """The actor's claim, made as it receives the command: False if the caller withdrew."""
        if self._state is _State.WITHDRAWN:
            self._channel.close()
            return False
        self._state = _State.TAKEN
        return True

    def withdraw(self) -> bool:
        """The caller's: True if the actor had not taken the command (now it never will)."""
        if self._state is _State.TAKEN:
            return False
        self._state = _State.WITHDRAWN
        return True

    def send(self, result: outcome.Outcome[T]) -> None:
        """The answer, if anyone still waits for it."""
        try:
            self._channel.send_nowait(result)
        except trio.BrokenResourceError:
            log.debug("reply_dropped", reason="caller_gone")

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Reply[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()  # on any exit: a crash never leaves the caller waiting


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
        reply = Reply(send)
        with receive:
            self.cast(make(reply))
            try:
                result = await self._outcome(reply, receive)
            except trio.EndOfChannel:
                raise Overloaded(
                    "the chat session restarted; retry", code="session_restarting", retry_after=1
                ) from None
            finally:
                reply.withdraw()  # leaving untaken (cancelled, hung up): it is not done later
        return result.unwrap()

    async def _outcome(
        self, reply: Reply[T], receive: trio.MemoryReceiveChannel[outcome.Outcome[T]]
    ) -> outcome.Outcome[T]:
        with trio.move_on_after(self._call_timeout):
            return await receive.receive()
        if reply.withdraw():
            raise Overloaded(
                "the chat session did not take the request in time; nothing was done; retry",
                code="session_timeout",
                retry_after=1,
            )
        # Taken: whatever it comes to (stored, refused, database error) is the answer.
        return await receive.receive()
