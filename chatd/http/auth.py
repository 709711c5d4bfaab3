"""Session tokens at the edge: `Authorization: Bearer <sessionToken>`."""

from __future__ import annotations

from quart import request

from chatd.core.tokens import bearer_token, token_hash
from chatd.errors import Unauthorized


def request_token_hash() -> bytes:
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise Unauthorized(
            "send the session token as 'Authorization: Bearer <sessionToken>'", code="missing_token"
        )
    return token_hash(token)
