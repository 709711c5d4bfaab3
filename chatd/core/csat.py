"""How a conversation ends and the shopper rates it (CSAT): the wire shapes, the words stored as
system messages, and whether the widget should ask for a rating.

A conversation ends when the shopper closes it (the widget's "End chat"), staff close it, or it
expires (no activity within its lifetime). Both the end and the rating are stored as system
messages whose metadata names the event, so every client sees them in seq order; the rating is
also delivered to n8n as an event (docs/n8n.md, "Conversation events").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatd.core.ids import Id
from chatd.core.responses import IdText, Out, SessionStatus, Timestamp
from chatd.core.wire import iso

MAX_COMMENT = 1000
ENDED_CONTENT = "Chat ended"


class Ending(StrEnum):
    SHOPPER = "shopper"  # the shopper closed it
    STAFF = "staff"  # someone on the team closed it
    EXPIRED = "expired"  # no activity within its lifetime


ENDINGS = tuple(e.value for e in Ending)


def ending_of(
    status: str, closed_by: str | None, expires_at: datetime | None, now: datetime
) -> Ending | None:
    """How the conversation ended, or None while it is live."""
    if status == "closed":
        return Ending.STAFF if closed_by == "staff" else Ending.SHOPPER
    if status == "expired" or (expires_at is not None and expires_at <= now):
        return Ending.EXPIRED
    return None


def wire_status(status: str, ending: Ending | None) -> SessionStatusText:
    """The status clients see: an active session past its lifetime is "expired"."""
    if ending is Ending.EXPIRED:
        return "expired"
    return "closed" if status == "closed" else "active"


def rating_requested(
    ending: Ending | None, rated: bool, *, enabled: bool, ask_on: frozenset[Ending]
) -> bool:
    """Whether the widget should ask for a rating now: once, after an end listed in ask_on."""
    return enabled and not rated and ending is not None and ending in ask_on


def parse_ask_on(text: str) -> frozenset[Ending]:
    """csat.ask_on: comma-separated endings; ValueError naming a word that is none."""
    words = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in words if w not in ENDINGS]
    if unknown:
        raise ValueError(f"unknown ending {unknown[0]!r}; use any of {', '.join(ENDINGS)}")
    return frozenset(Ending(w) for w in words)


@dataclass(frozen=True)
class ShopperRating:
    """A conversation's rating, as stored."""

    rating: int  # 1..5
    comment: str | None
    created_at: datetime

    def to_out(self) -> RatingOut:
        return RatingOut(rating=self.rating, comment=self.comment, createdAt=iso(self.created_at))


def ended_metadata(by: Ending) -> dict[str, Any]:
    return {"event": "session_closed", "by": by.value}


def rating_content(rating: int, comment: str | None) -> str:
    text = f"Rated {rating} of 5"
    return f"{text}: {comment}" if comment else text


def rating_metadata(rating: int, comment: str | None) -> dict[str, Any]:
    return {"event": "rating", "rating": rating, "comment": comment}


def clean_comment(comment: str | None) -> str | None:
    """A blank comment is no comment."""
    if comment is None or not comment.strip():
        return None
    return comment.strip()


# --- the wire -----------------------------------------------------------------------------------

SessionStatusText = Literal["active", "closed", "expired"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RatingRequest(_Request):
    sessionId: Id
    rating: Annotated[int, Field(ge=1, le=5, description="1 (poor) to 5 (great)")]
    comment: Annotated[str, Field(max_length=MAX_COMMENT)] | None = None


class SessionEnded(Out):
    sessionId: IdText
    status: SessionStatus
    ratingRequested: bool = Field(description="the widget should ask for a rating now")


class RatingOut(Out):
    rating: Annotated[int, Field(ge=1, le=5)]
    comment: str | None
    createdAt: Timestamp


class RatingAccepted(Out):
    sessionId: IdText
    rating: Annotated[int, Field(ge=1, le=5)]
    comment: str | None
    createdAt: Timestamp
