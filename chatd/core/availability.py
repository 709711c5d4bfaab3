"""Whether anyone can answer a shopper who asked for a person, and what the shopper is told when
nobody can: business hours (chatd/core/hours.py) and the agents online, judged at one moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chatd.core.hours import BusinessHours, when


@dataclass(frozen=True)
class Availability:
    open: bool  # within business hours
    agents_online: int
    back_at: datetime | None  # outside hours: the next opening (None: none within a year)

    @property
    def nobody(self) -> bool:
        return not self.open or self.agents_online == 0


def judge(hours: BusinessHours, agents_online: int, now: datetime) -> Availability:
    is_open = hours.is_open(now)
    return Availability(is_open, agents_online, None if is_open else hours.next_open(now))


def nobody_notice(availability: Availability, expected_reply: str, now: datetime) -> str:
    """The system message the shopper reads when nobody can answer now."""
    if availability.open:
        back = f"we usually reply within {expected_reply}"
    elif availability.back_at is not None:
        back = f"we are back {when(availability.back_at, now)}"
    else:
        back = "we will get back to you"
    return (
        f"No one is available right now — {back}. Leave your email and we will answer there;"
        " your conversation stays with our team."
    )


def nobody_metadata(availability: Availability, expected_reply: str) -> dict[str, Any]:
    """metadata.conversation of the notice: the widget shows its email form from it."""
    back_at = availability.back_at
    return {
        "conversation": {
            "event": "nobody_available",
            "state": "waiting",
            "open": availability.open,
            "agentsOnline": availability.agents_online,
            "expectedReply": expected_reply,
            "backAt": None if back_at is None else _iso(back_at),
            "askEmail": True,
        }
    }


def alert_text(availability: Availability, session_id: str, waited_seconds: float | None) -> str:
    """One line for the alerts webhook and the mail's subject."""
    if waited_seconds is not None:
        waited = (
            f"{waited_seconds:.0f} s" if waited_seconds < 120 else f"{waited_seconds / 60:.0f} min"
        )
        return (
            f"A shopper has waited {waited} for a person (conversation {session_id}); open /inbox"
        )
    why = "outside business hours" if not availability.open else "while no agent is online"
    return f"A shopper asked for a person {why} (conversation {session_id}); open /inbox"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
