"""Bearer tokens at the edge: session tokens, and the operators' secrets (metrics, admin)."""

from __future__ import annotations

import hashlib
import hmac

from quart import request

from chatd.core.tokens import bearer_token, token_hash
from chatd.errors import RateLimited, Unauthorized
from chatd.http.address_limits import AddressLimit


def request_token_hash() -> bytes:
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        raise Unauthorized(
            "send the session token as 'Authorization: Bearer <sessionToken>'", code="missing_token"
        )
    return token_hash(token)


def check_operator_token(authorization: str | None, expected: str, who: str) -> None:
    """401 unless `Authorization: Bearer <expected>`: the operators' tokens (`who`: "admin",
    "metrics"), compared in constant time. Codes: missing_<who>_token, bad_<who>_token."""
    if not authorization or not authorization.strip():
        raise Unauthorized(
            f"send the {who} token as 'Authorization: Bearer <{who}.token>'",
            code=f"missing_{who}_token",
        )
    scheme, _, given = authorization.strip().partition(" ")
    # Digests of equal length: the comparison reveals neither the token nor its length.
    given_digest = hashlib.sha256(given.strip().encode("utf-8", "surrogatepass")).digest()
    expected_digest = hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest()
    matches = hmac.compare_digest(given_digest, expected_digest)
    if scheme.lower() != "bearer" or not matches:
        raise Unauthorized(f"wrong {who} token", code=f"bad_{who}_token")


async def authorize_operator(
    failures: AddressLimit,
    ip: str,
    now: float,
    authorization: str | None,
    expected: str,
    who: str,
) -> None:
    """check_operator_token, with a price on guessing: each wrong token counts against the
    client's address, and an address with too many is refused (429, too_many_auth_failures)
    until its window passes, a right token included. A missing token is not counted (a page
    that has not asked for it yet). Counted across the cluster (chatd/http/address_limits.py)."""
    wait = await failures.retry_after(ip, now)
    if wait is not None:
        raise RateLimited(
            f"too many wrong {who} tokens from this address; retry later",
            code="too_many_auth_failures",
            retry_after=wait,
        )
    try:
        check_operator_token(authorization, expected, who)
    except Unauthorized as exc:
        if exc.code == f"bad_{who}_token":
            await failures.record(ip, now)
        raise
