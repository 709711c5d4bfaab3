"""Bodies for the nobody-there parts of the staff inbox: the email a shopper leaves when no one
can answer, and who is online (with the business hours) for the inbox page."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatd.core.ids import Id
from chatd.core.responses import IdText, MessageOut, Out, Timestamp
from chatd.core.wire import EMAIL


class ContactEmailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    sessionId: Id
    email: Annotated[
        str, Field(min_length=3, max_length=254, json_schema_extra={"pattern": EMAIL.pattern})
    ]

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not EMAIL.fullmatch(value):
            raise ValueError("not a valid email address")
        return value


class ContactEmailAccepted(Out):
    email: str
    message: MessageOut = Field(description="the system message that confirms it to the shopper")


class OnlineAgentOut(Out):
    id: IdText
    name: str


class PresenceOut(Out):
    agents: list[OnlineAgentOut] = Field(description="agents with the inbox open, anywhere")
    open: bool = Field(description="within business hours now")
    backAt: Timestamp | None = Field(description="outside hours: the next opening")
    timeZone: str
    expectedReply: str
