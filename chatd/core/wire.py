"""Wire models: request bodies (pydantic, strict, unknown fields refused) and the message shape."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chatd.core.ids import ID_PATTERN, Id
from chatd.core.jsonbody import nesting_depth
from chatd.core.query import parse_query
from chatd.errors import BadRequest

_EMAIL = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
EMAIL = _EMAIL  # the same rule for every email a shopper gives (chatd/core/handoff_wire.py)

Metadata = dict[str, Any]
M = TypeVar("M", bound=BaseModel)
ClientId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]


# Checked by check_content (with its own codes); the schema says it for the document.
Content = Annotated[
    str, Field(description="the text; may be empty when the message carries attachments")
]
MAX_ATTACHMENTS = 20  # per message, whatever attachments.max_files_per_message says
AttachmentIds = Annotated[
    list[Id],
    Field(
        max_length=MAX_ATTACHMENTS,
        description="attachmentIds from POST /api/chat/upload of this session, in order;"
        " at most attachments.max_files_per_message",
    ),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CreateSessionRequest(_Request):
    userId: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    guestEmail: (
        Annotated[
            str,
            # chatd's own rule (it takes non-ASCII local parts), not JSON Schema's stricter "email".
            Field(max_length=254, json_schema_extra={"pattern": _EMAIL.pattern}),
        ]
        | None
    ) = None
    metadata: Metadata | None = None
    userHash: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")] | None = None
    identityToken: Annotated[str, Field(min_length=1, max_length=4096)] | None = None

    @field_validator("guestEmail")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.fullmatch(value):
            raise ValueError("not a valid email address")
        return value


class SendMessageRequest(_Request):
    sessionId: Id
    content: Content
    messageType: Literal["text", "quick_reply"] = "text"
    metadata: Metadata | None = None
    clientMessageId: ClientId | None = None
    attachments: AttachmentIds | None = None


class UploadForm(_Request):
    """multipart/form-data: the session's id, then the file (its name in the part's filename).
    Read as a stream by chatd/files/upload.py; this model describes it for the document."""

    sessionId: Annotated[str, Field(json_schema_extra={"format": "uuid", "pattern": ID_PATTERN})]
    file: Annotated[bytes, Field(json_schema_extra={"format": "binary"})]


class FileQuery(_Request):
    """A file's signed URL: which variant, until when, and the signature over both."""

    v: Literal["original", "thumb"] = "original"
    exp: Annotated[int, Field(ge=0, le=10**12, description="expiry, Unix seconds")] | None = None
    sig: Annotated[str, Field(max_length=128, description="the URL's signature")] | None = None


@dataclass(frozen=True)
class Limits:
    max_message_length: int
    metadata_max_bytes: int
    metadata_max_depth: int
    max_attachments: int = 5  # attachments.max_files_per_message


def parse_model(model: type[M], value: Any) -> M:
    """Validate a parsed JSON value into `model`; a 400 naming the first bad field otherwise."""
    if not isinstance(value, dict):
        raise BadRequest("request body must be a JSON object", code="invalid_body")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        kind = first["type"]
        if kind == "extra_forbidden":
            raise BadRequest(
                f"unknown field {field!r}", code="unknown_field", field=field
            ) from None
        if kind == "missing":
            raise BadRequest(f"{field} is required", code="missing_field", field=field) from None
        if kind == "invalid_id":
            raise BadRequest(f"{field}: {first['msg']}", code="invalid_id", field=field) from None
        raise BadRequest(f"{field}: {first['msg']}", code="invalid_field", field=field) from None


def check_content(content: str, limits: Limits, *, with_attachments: bool = False) -> str:
    """The text of a message: not blank, unless files come with it (then it may be empty)."""
    if not content.strip() and not with_attachments:
        raise BadRequest("content is empty", code="empty_content", field="content")
    if len(content) > limits.max_message_length:
        raise BadRequest(
            f"content is longer than {limits.max_message_length} characters",
            code="content_too_long",
            field="content",
        )
    return content


def check_attachments(ids: list[str] | None, limits: Limits) -> tuple[str, ...]:
    """A message's attachment ids: at most `max_attachments`, each once."""
    if not ids:
        return ()
    if len(ids) > limits.max_attachments:
        raise BadRequest(
            f"at most {limits.max_attachments} attachments per message",
            code="too_many_attachments",
            field="attachments",
        )
    if len(set(ids)) != len(ids):
        raise BadRequest(
            "an attachment is listed twice", code="duplicate_attachment", field="attachments"
        )
    return tuple(ids)


def check_metadata(metadata: Metadata | None, limits: Limits) -> Metadata | None:
    if metadata is None:
        return None
    size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())
    if size > limits.metadata_max_bytes:
        raise BadRequest(
            f"metadata is larger than {limits.metadata_max_bytes} bytes",
            code="metadata_too_large",
            field="metadata",
        )
    if nesting_depth(metadata) > limits.metadata_max_depth:
        raise BadRequest(
            f"metadata is nested deeper than {limits.metadata_max_depth} levels",
            code="metadata_too_deep",
            field="metadata",
        )
    return metadata


@dataclass(frozen=True)
class PageQuery:
    page: int
    limit: int
    after_seq: int | None
    wait: int  # long-poll: seconds to hold the request when nothing is after after_seq
    stream_version: int | None = None  # long-poll: the streamed replies' version the client has


MAX_PAGE_LIMIT = 100
MAX_PAGE = 100_000
MAX_SEQ = 2**62
MAX_WAIT = 60
MAX_STREAM_VERSION = (1 << 53) - 1


class PageParams(_Request):
    """?page=&limit= (newest first) or ?afterSeq=&wait= (a resume, and a long poll)."""

    page: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 1
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_LIMIT)] = 50
    afterSeq: Annotated[int, Field(ge=0, le=MAX_SEQ)] | None = None
    wait: Annotated[
        int, Field(ge=0, le=MAX_WAIT, description="seconds to hold the request; needs afterSeq")
    ] = 0
    streamVersion: (
        Annotated[
            int,
            Field(
                ge=0,
                le=MAX_STREAM_VERSION,
                description="the streamed replies the client has (0 at first, then the last"
                " streamVersion answered): the answer lists the replies streaming now, and a"
                " wait also ends when they change; needs afterSeq",
            ),
        ]
        | None
    ) = None


class EventsParams(_Request):
    lastSeq: Annotated[
        int, Field(ge=0, le=MAX_SEQ, description="resume after this seq (Last-Event-ID wins)")
    ] = 0


def parse_page_query(args: Mapping[str, str], *, default_limit: int = 50) -> PageQuery:
    """?page=&limit=&afterSeq=&wait= as bounded integers; a 400 naming the parameter otherwise."""
    params = parse_query(PageParams, args)
    limit = params.limit if "limit" in args else default_limit
    query = PageQuery(params.page, limit, params.afterSeq, params.wait, params.streamVersion)
    if query.wait and query.after_seq is None:
        raise BadRequest("wait needs afterSeq", code="invalid_query", field="wait")
    if query.stream_version is not None and query.after_seq is None:
        raise BadRequest(
            "streamVersion needs afterSeq", code="invalid_query", field="streamVersion"
        )
    return query


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")
