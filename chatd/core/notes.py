"""The inbox's tools: internal notes (staff only, never the shopper's) and the canned responses
admins keep, as types between layers and as the API's bodies (requests strict with unknown
fields refused; answers shown in the OpenAPI document)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from chatd.core.responses import IdText, Out, Timestamp
from chatd.core.wire import iso

SHORTCUT_PATTERN = r"^[a-z0-9_-]{1,32}$"
MAX_TITLE = 120
MAX_CANNED = 4000  # characters of a canned response's text (an agent may edit it, then send)

Shortcut = Annotated[
    str,
    Field(
        pattern=SHORTCUT_PATTERN,
        description="typed after / in the inbox's composer: 1 to 32 of a-z, 0-9, _ and -",
    ),
]
Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE, pattern=r"\S")]
CannedText = Annotated[str, Field(min_length=1, max_length=MAX_CANNED, pattern=r"\S")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NoteRequest(_Request):
    content: str = Field(description="the note: for staff only, never shown to the shopper")


class CannedRequest(_Request):
    shortcut: Shortcut
    title: Title
    content: CannedText


class NoteOut(Out):
    id: IdText
    sessionId: IdText
    agentId: IdText | None = Field(description="null: the account was deleted since")
    agentName: str
    content: str
    createdAt: Timestamp


class NoteAdded(Out):
    note: NoteOut


class Notes(Out):
    notes: list[NoteOut]


class CannedOut(Out):
    id: IdText
    shortcut: str
    title: str
    content: str
    createdAt: Timestamp
    updatedAt: Timestamp


class CannedResponses(Out):
    cannedResponses: list[CannedOut]


class CannedSaved(Out):
    cannedResponse: CannedOut


class CannedDeleted(Out):
    deleted: IdText


@dataclass(frozen=True)
class Note:
    id: str
    session_id: str
    agent_id: str | None
    agent_name: str
    content: str
    created_at: datetime

    def to_out(self) -> NoteOut:
        return NoteOut(
            id=self.id,
            sessionId=self.session_id,
            agentId=self.agent_id,
            agentName=self.agent_name,
            content=self.content,
            createdAt=iso(self.created_at),
        )

    def event(self) -> dict[str, Any]:
        """The inbox socket's `note` event (only ever sent to the inbox's feed)."""
        return {
            "type": "note",
            "sessionId": self.session_id,
            "note": self.to_out().model_dump(mode="json"),
        }


@dataclass(frozen=True)
class CannedResponse:
    id: str
    shortcut: str
    title: str
    content: str
    created_at: datetime
    updated_at: datetime

    def to_out(self) -> CannedOut:
        return CannedOut(
            id=self.id,
            shortcut=self.shortcut,
            title=self.title,
            content=self.content,
            createdAt=iso(self.created_at),
            updatedAt=iso(self.updated_at),
        )
