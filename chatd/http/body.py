"""Reading a request: JSON content type, body size, strict parse, model validation."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from quart import request
from quart.wrappers.base import BaseRequestWebsocket

from chatd.core.jsonbody import parse_json
from chatd.core.wire import parse_model
from chatd.errors import UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)


async def json_body(model: type[M]) -> M:
    """The body as `model`; 415, 413 or 400 with a JSON error naming the problem otherwise."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(
            f"send Content-Type: application/json (got {request.mimetype or 'none'!r})"
        )
    raw = await request.get_data(as_text=False)  # raises 413 past MAX_CONTENT_LENGTH
    assert isinstance(raw, bytes)
    return parse_model(model, parse_json(raw))


def client_ip(trust_forwarded_for: bool, source: BaseRequestWebsocket | None = None) -> str:
    """The client's address: of the current request, or of `source` (a websocket)."""
    source = source if source is not None else request
    if trust_forwarded_for:
        forwarded = source.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",", 1)[0].strip()
        if first:
            return first
    return source.remote_addr or "unknown"
