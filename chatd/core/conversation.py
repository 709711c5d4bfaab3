"""Who answers a conversation, and the changes staff and shoppers make to that.

    bot ──handoff──▶ waiting ──take──▶ human ──hand back──▶ bot
     │                  │                │ └─transfer─▶ human (another agent)
     └──────take────────┼───────────────▶│
                        └──── close ─────┴──▶ closed ──(shopper writes)──▶ bot

Each change is fenced on the states it may start from, applied in one statement with the system
message that tells the shopper and the staff (sql/queries/inbox.sql), and audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chatd.core.staff import Agent


class ConversationState(StrEnum):
    BOT = "bot"  # n8n answers
    WAITING = "waiting"  # a person was asked for; nobody holds it yet (n8n is not called)
    HUMAN = "human"  # an agent holds it (n8n is not called; a bot reply is not shown)
    CLOSED = "closed"  # done; the shopper's next message reopens it to the bot


OPEN_STATES = (ConversationState.BOT, ConversationState.WAITING, ConversationState.HUMAN)


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
        "This conversation was closed. Write again any time.",
        "closed",
        holder=None if agent.is_admin else agent.id,
        actor=agent.id,
    )


def request_handoff(reason: str) -> ConversationChange:
    """The shopper asks for a person (the widget's "Talk to a person")."""
    return ConversationChange(
        "handoff_requested",
        (ConversationState.BOT, ConversationState.CLOSED),
        ConversationState.WAITING,
        "You asked for a person. Someone from our team will join shortly.",
        "handoff_requested",
        reason=reason,
        detail={"by": "shopper"},
    )
