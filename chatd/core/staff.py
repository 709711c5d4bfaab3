"""Staff accounts: roles, what an agent is between layers, passwords (argon2id) and the
browser session's tokens (cookie and CSRF). Pure: no I/O; hashing is CPU work for the caller to
place (the server runs it off the event loop)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a bound keeps a request's cost bounded
_HASHER = PasswordHasher()  # argon2id with the library's RFC 9106 "low memory" defaults
# Verified when the email is unknown, so an unknown address costs the same time as a known one.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


class Role(StrEnum):
    ADMIN = "admin"  # everything, the admin page and API included
    AGENT = "agent"  # works conversations in the inbox


@dataclass(frozen=True)
class Agent:
    id: str
    name: str  # shown to shoppers ("Anna joined the chat")
    email: str
    role: Role
    disabled: bool
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class WeakPassword(ValueError):
    """The password cannot be used; the message says why."""


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(f"a password has at most {MAX_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(check_password(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if `password` matches; an unknown account (None) takes the same time and fails."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_staff_token() -> str:
    """The cookie's value: 256 random bits; only its sha256 is stored."""
    return secrets.token_urlsafe(32)


def csrf_token(staff_token: str) -> str:
    """The CSRF token of a browser session: derived from its cookie, so nothing more is stored,
    and only a page that was told it (by sign-in or GET /api/staff/me) can send it."""
    return hmac.new(staff_token.encode(), b"chatd-csrf", hashlib.sha256).hexdigest()


def csrf_matches(staff_token: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(csrf_token(staff_token), given)
