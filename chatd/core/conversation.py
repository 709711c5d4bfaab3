"""Who answers a conversation, and the changes staff and shoppers make to that.

    bot ──handoff──▶ waiting ──take──▶ human ──hand back──▶ bot
     │                  │                │ └─transfer─▶ human (another agent)
     └──────take────────┼───────────────▶│
     └──────────────────┴──── close ─────┴──▶ closed (the session ended)

Each change is fenced on the states it may start from, applied in one statement with the system
message that tells the shopper and the staff (sql/queries/inbox.sql), and audited. Closing is
the end of the conversation, the same as staff closing it from the admin API (chatd/core/csat.py):
the session takes no more messages, and the widget may ask for a rating.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from chatd.core.csat import ENDED_CONTENT, Ending, ended_metadata
from chatd.core.inbox_wire import AuditOut
from chatd.core.staff import Agent
from chatd.core.wire import iso


class ConversationState(StrEnum):
    BOT = "bot"  # n8n answers
    WAITING = "waiting"  # a person was asked for; nobody holds it yet (n8n is not called)
    HUMAN = "human"  # an agent holds it (n8n is not called; a bot reply is not shown)
    CLOSED = "closed"  # the session ended (by the shopper, or staff: admin API or inbox)


OPEN_STATES = (ConversationState.BOT, ConversationState.WAITING, ConversationState.HUMAN)


@dataclass(frozen=True)
class AuditEntry:
    """One line of a conversation's audit trail (chat_audit): who did what, when."""

    action: str
    agent_id: str | None  # None: the shopper or the bot (detail may say which)
    agent_name: str | None
    detail: dict[str, Any] | None
    created_at: datetime

    def to_out(self) -> AuditOut:
        return AuditOut(
            action=self.action,
            agentId=self.agent_id,
            agentName=self.agent_name,
            detail=self.detail,
            at=iso(self.created_at),
        )


@dataclass(frozen=True)
class ConversationChange:
    action: str  # the audit's name for it
    from_states: tuple[ConversationState, ...]
    to_state: ConversationState
    content: str  # the system message everyone sees
    event: str  # metadata.conversation.event of that message, for pages that react to it
    to_agent: Agent | None = None
    holder: str | None = None  # an agent id: refused if someone else holds the conversation
    actor: str | None = None  # the agent who did it (None: the shopper)
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        conversation: dict[str, Any] = {"event": self.event, "state": self.to_state.value}
        if self.to_agent is not None:
            conversation["agentName"] = self.to_agent.name
        if self.to_state is ConversationState.CLOSED:  # the widget's rating prompt reads it
            return {**ended_metadata(Ending.STAFF), "conversation": conversation}
        return {"conversation": conversation}


def take(agent: Agent) -> ConversationChange:
    return ConversationChange(
        "taken",
        (ConversationState.BOT, ConversationState.WAITING),
        ConversationState.HUMAN,
        f"{agent.name} joined the chat",
        "agent_joined",
        to_agent=agent,
        actor=agent.id,
    )


def hand_back(agent: Agent) -> ConversationChange:
    return ConversationChange(
        "handed_back",
        (ConversationState.HUMAN,),
        ConversationState.BOT,
        f"{agent.name} left the chat; the assistant answers again",
        "handed_back",
        holder=None if agent.is_admin else agent.id,
        actor=agent.id,
    )


def transfer(agent: Agent, to: Agent) -> ConversationChange:
    return ConversationChange(
        "transferred",
        (ConversationState.HUMAN,),
        ConversationState.HUMAN,
        f"{agent.name} passed the chat to {to.name}",
        "transferred",
        to_agent=to,
        holder=None if agent.is_admin else agent.id,
        actor=agent.id,
        detail={"to": to.id},
    )


def close(agent: Agent) -> ConversationChange:
    return ConversationChange(
        "closed",
        OPEN_STATES,
        ConversationState.CLOSED,
        ENDED_CONTENT,
        "closed",
        holder=None if agent.is_admin else agent.id,
        actor=agent.id,
    )


def request_handoff(reason: str) -> ConversationChange:
    """The shopper asks for a person (the widget's "Talk to a person")."""
    return ConversationChange(
        "handoff_requested",
        (ConversationState.BOT,),
        ConversationState.WAITING,
        "You asked for a person. Someone from our team will join shortly.",
        "handoff_requested",
        reason=reason,
        detail={"by": "shopper"},
    )
