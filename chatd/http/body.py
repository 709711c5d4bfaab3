"""Reading a request: JSON content type, body size, strict parse, model validation."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from quart import request
from quart.wrappers.base import BaseRequestWebsocket

from chatd.core.forwarded import ProxyTrust, client_address
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


def client_ip(trust: ProxyTrust, source: BaseRequestWebsocket | None = None) -> str:
    """The client's address, of the current request or of `source` (a websocket): from
    X-Forwarded-For as far as `trust` (server.trusted_proxy_hops, server.trusted_proxies)
    allows, else the connection's peer."""
    source = source if source is not None else request
    forwarded = source.headers.getlist("X-Forwarded-For")
    return client_address(source.remote_addr, forwarded, trust) or "unknown"
