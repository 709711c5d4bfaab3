"""SessionActor: the one task through which a chat session's state changes.

Commands are frozen dataclasses handled one at a time, so per-session rules (idempotent sends)
need no locks; the per-session rate limit is the send statement's, exact across processes
(sql/queries/messages.sql). Expected failures (bad token, rate limit, database down) are
replies; anything else crashes the actor, and the registry restarts it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import outcome
import structlog
import trio

from chatd.actors.handle import Reply
from chatd.core.conversation import ConversationChange, ConversationState
from chatd.core.csat import Ending
from chatd.core.histogram import Histogram, HistogramSnapshot
from chatd.core.messages import BotMessage, Message, MessageStatus, NewMessage, StreamedPart
from chatd.core.staff import Agent
from chatd.db.conversations import Conversation, ConversationStore, Rated
from chatd.db.messages import MessageStore, StoredMessage
from chatd.db.queue import QueueStore, Settle, StoredReply, StoredStream
from chatd.db.takeover import TakeoverStore
from chatd.errors import ClientError, DatabaseUnavailable
from chatd.realtime.hub import Hub

log = structlog.get_logger(__name__)

T = TypeVar("T")

# From "instant" to "the guide's alert" (5 s) and well past it: n8n workflows with an LLM are slow.
RESPONSE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True)
class Send:
    token_hash: bytes
    message: NewMessage
    reply: Reply[StoredMessage]


@dataclass(frozen=True)
class StoreReply:
    """A bot reply (from n8n's response, a callback, or the fallback), stored once."""

    message: BotMessage
    reply_status: MessageStatus  # what the answered user message becomes: DELIVERED or FAILED
    settle: Settle | None  # the job this reply settles, fenced on its lease
    reply: Reply[StoredReply]


@dataclass(frozen=True)
class ChangeConversation:
    """Who answers the conversation changes (handoff, take, hand back, transfer, close)."""

    change: ConversationChange
    reply: Reply[Message]


@dataclass(frozen=True)
class AgentSend:
    """A reply from the agent holding the conversation."""

    agent: Agent
    content: str
    reply: Reply[Message]
    attachments: tuple[str, ...] = ()  # the agent's uploads into this session, in order


@dataclass(frozen=True)
class StoreStream:
    """A streamed reply's messages (one per run, in the order they began), stored together."""

    reply_to: str  # the user message they answer
    parts: tuple[StreamedPart, ...]
    settle: Settle  # the job they complete, fenced on its lease
    reply: Reply[StoredStream]


@dataclass(frozen=True)
class Close:
    """End the conversation: the shopper's (with their token's hash) or staff's (None)."""

    by: Ending
    token_hash: bytes | None
    reply: Reply[Conversation]


@dataclass(frozen=True)
class Rate:
    """The shopper's rating of the ended conversation, once."""

    token_hash: bytes
    rating: int
    comment: str | None
    notify_n8n: bool  # also queue it for n8n as an event
    reply: Reply[Rated]


SessionCommand = Send | StoreReply | StoreStream | ChangeConversation | AgentSend | Close | Rate


@dataclass(frozen=True)
class SessionStatistics:
    messages_sent: int  # shoppers' messages stored (and queued for n8n)
    duplicate_replies: int  # replies received again and stored once
    response_time: HistogramSnapshot  # seconds from a message stored to its reply stored


class SessionTally:
    """What this process's session actors did: one tally shared by all of them, outliving any
    one actor (they stop when idle and restart after a crash)."""

    def __init__(self) -> None:
        self._messages_sent = 0
        self._duplicate_replies = 0
        self._response_time = Histogram(RESPONSE_BUCKETS)

    def statistics(self) -> SessionStatistics:
        return SessionStatistics(
            self._messages_sent, self._duplicate_replies, self._response_time.snapshot()
        )

    def message_sent(self) -> None:
        self._messages_sent += 1

    def reply_stored(self, *, duplicate: bool, response_seconds: float | None) -> None:
        if duplicate:
            self._duplicate_replies += 1
        if response_seconds is not None:
            self._response_time.observe(response_seconds)


@dataclass(frozen=True)
class SessionActorConfig:
    idle_timeout: float


class SessionActor:
    def __init__(
        self,
        session_id: str,
        mailbox: trio.MemoryReceiveChannel[SessionCommand],
        messages: MessageStore,
        queue: QueueStore,
        hub: Hub,
        config: SessionActorConfig,
        tally: SessionTally,
        conversations: ConversationStore,
        takeover: TakeoverStore,
    ) -> None:
        self.session_id = session_id
        self._takeover = takeover
        self._mailbox = mailbox
        self._messages = messages
        self._queue = queue
        self._conversations = conversations
        self._hub = hub
        self._config = config
        self._tally = tally

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Handle commands until idle for `idle_timeout` seconds (then return normally)."""
        task_status.started()
        while True:
            # Only the wait for the next command is under the idle timer, never a command.
            with trio.move_on_after(self._config.idle_timeout) as idle:
                command = await self._mailbox.receive()
            if idle.cancelled_caught:
                return
            # Taken as received (no checkpoint in between), or skipped: its caller gave up
            # waiting and was told nothing was done.
            if not command.reply.take():
                log.debug("command_withdrawn", command=type(command).__name__)
                continue
            match command:
                case Send():
                    await self._answer(command.reply, self._on_send(command))
                case StoreReply():
                    await self._answer(command.reply, self._on_store_reply(command))
                case ChangeConversation():
                    await self._answer(command.reply, self._on_change(command))
                case AgentSend():
                    await self._answer(command.reply, self._on_agent_send(command))
                case StoreStream():
                    await self._answer(command.reply, self._on_store_stream(command))
                case Close():
                    await self._answer(command.reply, self._on_close(command))
                case Rate():
                    await self._answer(command.reply, self._on_rate(command))

    async def _answer(self, reply: Reply[T], work: Awaitable[T]) -> None:
        """Expected failures are the caller's answer; anything else crashes the actor."""
        with reply:  # closed on any exit, so a crash never leaves the caller waiting
            try:
                value = await work
            except (ClientError, DatabaseUnavailable) as exc:
                reply.send(outcome.Error(exc))
            else:
                reply.send(outcome.Value(value))

    async def _on_send(self, command: Send) -> StoredMessage:
        stored = await self._messages.send(self.session_id, command.token_hash, command.message)
        if stored.created:
            self._tally.message_sent()
            message = stored.message
            self._hub.publish_message(message)  # this process's clients need no notification
            log.info("message_stored", message_id=message.id, seq=message.seq)
        return stored

    # Bot replies are stored and shown here, and only here: the place where a later rule (a
    # person holds the conversation: a bot reply is not shown) decides.

    async def _on_store_reply(self, command: StoreReply) -> StoredReply:
        stored = await self._queue.store_bot_message(
            command.message, reply_status=command.reply_status, settle=command.settle
        )
        self._tally.reply_stored(
            duplicate=stored.duplicate, response_seconds=stored.response_seconds
        )
        if stored.message is not None and not stored.duplicate:
            self._hub.publish_message(stored.message)
            log.info("reply_stored", message_id=stored.message.id, seq=stored.message.seq)
        return stored

    async def _on_change(self, command: ChangeConversation) -> Message:
        message = await self._takeover.change(self.session_id, command.change)
        self._hub.publish_message(message)
        log.info("conversation_changed", action=command.change.action, seq=message.seq)
        to_state = command.change.to_state
        if to_state in (ConversationState.HUMAN, ConversationState.BOT):
            await self._hold_streams(to_state is ConversationState.HUMAN)
        return message

    async def _hold_streams(self, held: bool) -> None:
        """Held by an agent: a bot reply streaming now is withdrawn, here and in every process,
        and none shows until the hand-back (chatd/realtime/streams.py)."""
        self._hub.hold_streams(self.session_id, held)
        note = {"type": "stream_hold", "sessionId": self.session_id, "held": held}
        with contextlib.suppress(DatabaseUnavailable):  # a hint: a held reply is withdrawn
            await self._messages.notify_event(note)  # at its end anyway (queue/outcomes.py)

    async def _on_agent_send(self, command: AgentSend) -> Message:
        message = await self._takeover.agent_message(
            self.session_id, command.agent, command.content, command.attachments
        )
        self._hub.publish_message(message)
        log.info("agent_message_stored", message_id=message.id, seq=message.seq)
        return message

    async def _on_store_stream(self, command: StoreStream) -> StoredStream:
        stored = await self._queue.store_bot_messages(
            command.reply_to, list(command.parts), command.settle
        )
        for number, message in enumerate(stored.messages):
            self._tally.reply_stored(
                duplicate=False, response_seconds=stored.response_seconds if number == 0 else None
            )
            self._hub.publish_message(message)  # takes its streamed text's place
            log.info("reply_stored", message_id=message.id, seq=message.seq, streamed=True)
        for _ in range(stored.duplicates):
            self._tally.reply_stored(duplicate=True, response_seconds=None)
        return stored

    async def _on_close(self, command: Close) -> Conversation:
        conversation, ended = await self._conversations.close(
            self.session_id, command.by, command.token_hash
        )
        if ended is not None:
            self._hub.publish_message(ended)
            log.info("session_closed", by=command.by.value, seq=ended.seq)
        return conversation

    async def _on_rate(self, command: Rate) -> Rated:
        rated = await self._conversations.rate(
            self.session_id,
            command.token_hash,
            command.rating,
            command.comment,
            notify_n8n=command.notify_n8n,
        )
        self._hub.publish_message(rated.message)
        log.info("session_rated", rating=command.rating, seq=rated.message.seq)
        return rated
