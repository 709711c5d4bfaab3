"""Conversation tags' normal form: what staff type and n8n sends, as chatd stores it.

Trimmed, ASCII letters lowered, inner whitespace as one "-", then 1-50 characters of
a-z 0-9 _ . : - starting with a letter or digit. ASCII only, so the same rule holds in
PostgreSQL whatever its locale: chatd_tag() in sql/migrations/0009_insights.sql is this rule for
the tags n8n sets, and a test checks that the two agree.
"""

from __future__ import annotations

import re
import string

MAX_TAG_LENGTH = 50
MAX_TAGS_PER_SESSION = 50
TAG_PATTERN = "^[a-z0-9][a-z0-9_.:-]{0,49}$"  # the stored form (and the OpenAPI schema's)
_SPACE = " \t\r\n"
_SPACES = re.compile(f"[{_SPACE}]+")
_TAG = re.compile("[a-z0-9][a-z0-9_.:-]{0,49}")
_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
RULE = (
    "a tag is 1-50 characters of a-z, 0-9, '_', '.', ':' or '-' (spaces become '-'),"
    " starting with a letter or digit"
)


def normalise_tag(raw: str) -> str | None:
    """The stored form of `raw`, or None when it cannot be a tag."""
    tag = _SPACES.sub("-", raw.strip(_SPACE).translate(_LOWER))
    return tag if _TAG.fullmatch(tag) else None
