"""SessionClient: the one typed way to ask a session actor for something.

The HTTP routes, the WebSocket, n8n's callback and the dispatcher all call these methods; each
builds its command with a one-shot reply channel and waits for the answer (a full mailbox, or an
actor that dies before answering, is Overloaded: see handle.py).
"""

from __future__ import annotations

from chatd.actors.handle import Reply
from chatd.actors.registry import SessionRegistry
from chatd.actors.session import (
    AgentSend,
    ChangeConversation,
    Close,
    Rate,
    Send,
    SessionCommand,
    StoreReply,
    StoreStream,
)
from chatd.core.conversation import ConversationChange
from chatd.core.csat import Ending
from chatd.core.messages import BotMessage, Message, MessageStatus, NewMessage, StreamedPart
from chatd.core.staff import Agent
from chatd.db.conversations import Conversation, Rated
from chatd.db.messages import StoredMessage
from chatd.db.queue import Settle, StoredReply, StoredStream


class SessionClient:
    def __init__(self, registry: SessionRegistry[SessionCommand]) -> None:
        self._registry = registry

    async def send_message(
        self, session_id: str, token_hash: bytes, message: NewMessage
    ) -> StoredMessage:
        """Store a shopper's message, and its webhook job, in the session's order."""

        def command(reply: Reply[StoredMessage]) -> Send:
            return Send(token_hash, message, reply)

        return await self._registry.call(session_id, command)

    async def store_reply(
        self, message: BotMessage, *, reply_status: MessageStatus, settle: Settle | None = None
    ) -> StoredReply:
        """Store a bot reply once (by its key), settling `settle`'s job in the same step."""

        def command(reply: Reply[StoredReply]) -> StoreReply:
            return StoreReply(message, reply_status, settle, reply)

        return await self._registry.call(message.session_id, command)

    async def change_conversation(self, session_id: str, change: ConversationChange) -> Message:
        """Apply a change of who answers, with the system message that tells everyone."""

        def command(reply: Reply[Message]) -> ChangeConversation:
            return ChangeConversation(change, reply)

        return await self._registry.call(session_id, command)

    async def agent_send(
        self, session_id: str, agent: Agent, content: str, attachments: tuple[str, ...] = ()
    ) -> Message:
        """Store the holding agent's reply (with its files) and push it to the shopper."""

        def command(reply: Reply[Message]) -> AgentSend:
            return AgentSend(agent, content, reply, attachments)

        return await self._registry.call(session_id, command)

    async def store_stream(
        self, reply_to: str, parts: list[StreamedPart], settle: Settle
    ) -> StoredStream:
        """Store a streamed reply's messages in one step with the completion of its job."""

        def command(reply: Reply[StoredStream]) -> StoreStream:
            return StoreStream(reply_to, tuple(parts), settle, reply)

        return await self._registry.call(settle.job.session_id, command)

    async def close(
        self, session_id: str, *, by: Ending, token_hash: bytes | None = None
    ) -> Conversation:
        """End a live conversation (a no-op for an ended one): the shopper's, proven by their
        token's hash, or staff's (no token: the caller authorized them)."""

        def command(reply: Reply[Conversation]) -> Close:
            return Close(by, token_hash, reply)

        return await self._registry.call(session_id, command)

    async def rate(
        self,
        session_id: str,
        token_hash: bytes,
        rating: int,
        comment: str | None,
        *,
        notify_n8n: bool,
    ) -> Rated:
        """The shopper's rating of their ended conversation, once."""

        def command(reply: Reply[Rated]) -> Rate:
            return Rate(token_hash, rating, comment, notify_n8n, reply)

        return await self._registry.call(session_id, command)
