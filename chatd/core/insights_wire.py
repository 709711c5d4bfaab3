"""The admin API's insight bodies as pydantic models: search, tags, and a shopper's data on
request (export, deletion, its audit). Requests are strict (unknown fields refused)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatd.core.admin_wire import MAX_SEARCH_LENGTH, SessionRecordOut, Tag
from chatd.core.responses import Count, IdText, MessageOut, Out, Timestamp

MAX_SEARCH_PAGE_SIZE = 50
MAX_SEARCH_DEPTH = 1000  # page * limit: deeper, narrow the search (a page costs its depth)
MAX_TAG_LIST = 1000
MAX_ERASURE_LIST = 200
MAX_IDENTIFIER_LENGTH = 320  # an email's longest form
# Control characters are refused by chatd.core.query; the schema says it too.
_PRINTABLE = {"pattern": "^[^\\u0000-\\u001f\\u007f]*$"}


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Printable = Annotated[str, Field(max_length=MAX_SEARCH_LENGTH, json_schema_extra=_PRINTABLE)]


class SearchQuery(_Request):
    q: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_SEARCH_LENGTH,
            json_schema_extra={
                "pattern": "^[^\\u0000-\\u001f\\u007f]*\\S[^\\u0000-\\u001f\\u007f]*$"
            },
            description='words to find (stemmed in [search] language); "a phrase", or, -word',
        ),
    ]
    since: Annotated[
        Printable,
        Field(description="messages from: 2026-11-01, 2026-11-01T10:00:00Z or 7d (ago)"),
    ] = ""
    until: Annotated[Printable, Field(description="messages before: as since")] = ""
    tag: Annotated[Printable, Field(description="only conversations with this tag")] = ""
    status: Annotated[
        Literal["any", "bot_only", "failed"],
        Field(
            description="bot_only: never handed to a person (as handoff=no);"
            " failed: a delivery to n8n failed in it"
        ),
    ] = "any"
    handoff: Annotated[
        Literal["", "yes", "no"],
        Field(
            description="yes: only conversations handed to a person (asked for, or taken over"
            " by an agent), at any time; no: only those never handed off"
        ),
    ] = ""
    state: Annotated[
        Literal["", "bot", "waiting", "human", "closed"],
        Field(description="only conversations in this state now (who answers them)"),
    ] = ""
    agent: Annotated[
        Printable,
        Field(
            description="only conversations this agent (id or email) took part in: took, replied,"
            " was passed, handed back or closed, or holds now"
        ),
    ] = ""
    sender: Literal["any", "user", "bot", "system", "agent"] = "any"
    rating: Annotated[
        Literal["", "1", "2", "3", "4", "5", "rated", "unrated"],
        Field(description="only conversations the shopper rated so (1-5), rated at all, or not"),
    ] = ""
    shopper: Annotated[
        Printable, Field(description="only this shopper's conversations: user id or guest email")
    ] = ""
    sort: Annotated[
        Literal["newest", "relevance"],
        Field(description="relevance ranks every match (slower for frequent words)"),
    ] = "newest"
    page: Annotated[int, Field(ge=1, le=MAX_SEARCH_DEPTH)] = 1
    limit: Annotated[int, Field(ge=1, le=MAX_SEARCH_PAGE_SIZE)] = 20


class TagsQuery(_Request):
    limit: Annotated[int, Field(ge=1, le=MAX_TAG_LIST)] = 200


class _Shopper(_Request):
    userId: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    email: Annotated[str, Field(min_length=1, max_length=MAX_IDENTIFIER_LENGTH)] | None = None


class ShopperExportRequest(_Shopper):
    format: Literal["json", "text"] = "json"


class ShopperDeleteRequest(_Shopper):
    confirm: Annotated[
        Literal[True], Field(description="must be true: the deletion cannot be undone")
    ]
    vacuum: Annotated[
        bool,
        Field(description="vacuum the tables afterwards, so the bytes leave the files now"),
    ] = True


class ErasuresQuery(_Request):
    limit: Annotated[int, Field(ge=1, le=MAX_ERASURE_LIST)] = 50


# --- answers -----------------------------------------------------------------------------------


class Segment(Out):
    text: str
    match: bool = Field(description="a matched word: the page marks it")


class SearchHitOut(Out):
    messageId: IdText
    sessionId: IdText
    seq: Annotated[int, Field(ge=1)]
    senderType: Literal["user", "bot", "system", "agent"]
    createdAt: Timestamp
    rank: Annotated[float, Field(ge=0)]
    snippet: list[Segment] = Field(description="the message around its first match")
    terms: list[str] = Field(description="the words of the message that matched")
    userId: str | None
    guestEmail: str | None
    tags: list[Tag]


class SearchResults(Out):
    q: str
    parsed: str = Field(description="the query as PostgreSQL read it, e.g. 'trail' & 'shoe'")
    language: str
    sort: Literal["newest", "relevance"]
    page: Annotated[int, Field(ge=1)]
    limit: Annotated[int, Field(ge=1)]
    hasMore: bool
    results: list[SearchHitOut]


class SessionTags(Out):
    sessionId: IdText
    tags: list[Tag]


class TagCountOut(Out):
    tag: Tag
    sessions: Count


class TagList(Out):
    tags: list[TagCountOut]


class ShopperSession(Out):
    session: SessionRecordOut
    messages: list[MessageOut]


class ShopperExport(Out):
    shopper: dict[str, str] = Field(description='{"userId": ...} or {"email": ...}')
    exportedAt: Timestamp
    sessions: list[ShopperSession]


class ErasureOut(Out):
    id: IdText
    erasedAt: Timestamp
    requestedBy: str
    subject: Literal["user_id", "email"]
    subjectHash: str = Field(description="hex salted SHA-256 of the identifier (never in clear)")
    deleted: dict[str, Count] = Field(description="rows deleted, per table")


class ShopperDeleted(Out):
    erasure: ErasureOut
    vacuumed: bool = Field(description="false: autovacuum will free the space later")


class Erasures(Out):
    erasures: list[ErasureOut]
