"""Proof that a session's userId is the shop's user: an HMAC (userHash) or a JWT (identityToken).

userHash is hex HMAC-SHA256(userId) under the identity secret (the Chatwoot/Intercom convention);
identityToken is an HS256 JWT with `exp` whose `sub` is the userId; its other claims become the
session's user context (e.g. membershipLevel). Anything unproven is refused, never downgraded.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import jwt

from chatd.core.jsonbody import check_value
from chatd.errors import BadRequest, Unauthorized

_REGISTERED_CLAIMS = frozenset({"sub", "exp", "iat", "nbf", "iss", "aud", "jti"})
CLOCK_LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class Identity:
    user_id: str | None
    context: dict[str, Any] = field(default_factory=dict)


def user_hash(user_id: str, secret: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def prove_identity(
    *,
    user_id: str | None,
    user_hash_hex: str | None,
    identity_token: str | None,
    secret: str,
    now: float,
) -> Identity:
    """The verified identity, or Identity(None) for a guest; Unauthorized if a claim is unproven."""
    if user_id is None and user_hash_hex is None and identity_token is None:
        return Identity(None)
    if not secret:
        raise Unauthorized(
            "this chatd has no identity secret configured, so a userId cannot be proven;"
            " start a guest session or set identity.secret",
            code="identity_not_configured",
        )
    if identity_token is not None:
        claims = _decode(identity_token, secret, now)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthorized("identityToken has no 'sub' claim", code="invalid_identity_token")
        if user_id is not None and user_id != subject:
            raise Unauthorized(
                "userId does not match the identityToken's 'sub'",
                code="identity_mismatch",
                field="userId",
            )
        context = {k: v for k, v in claims.items() if k not in _REGISTERED_CLAIMS}
        return Identity(subject, context)
    if user_id is None:
        raise Unauthorized(
            "userHash given without userId", code="identity_unproven", field="userId"
        )
    if user_hash_hex is None:
        raise Unauthorized(
            "userId needs proof: userHash (HMAC-SHA256 of the userId) or identityToken",
            code="identity_unproven",
            field="userId",
        )
    if not hmac.compare_digest(user_hash(user_id, secret), user_hash_hex.lower()):
        raise Unauthorized(
            "userHash does not match userId", code="identity_unproven", field="userHash"
        )
    return Identity(user_id)


def _decode(token: str, secret: str, now: float) -> dict[str, Any]:
    try:
        # PyJWT checks exp/nbf/iat against its own clock; we check against `now` ourselves.
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={
                "require": ["exp", "sub"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(
            f"identityToken is not valid: {exc}",
            code="invalid_identity_token",
            field="identityToken",
        ) from None
    try:
        # The claims are stored (user id, context as jsonb): PostgreSQL must be able to take them.
        check_value(claims, "", 0)
    except BadRequest as exc:
        where = f" (in {exc.field})" if exc.field else ""
        raise BadRequest(
            f"identityToken's claims cannot be stored: {exc.message}{where}",
            code=exc.code,
            field="identityToken",
        ) from None
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    if not isinstance(exp, int | float) or exp + CLOCK_LEEWAY_SECONDS < now:
        raise Unauthorized(
            "identityToken has expired", code="invalid_identity_token", field="identityToken"
        )
    if any(isinstance(t, int | float) and t - CLOCK_LEEWAY_SECONDS > now for t in (nbf, iat)):
        raise Unauthorized(
            "identityToken is not valid yet", code="invalid_identity_token", field="identityToken"
        )
    return claims
