"""chatd's ids (sessions, messages, dead-letter jobs): UUID text, checked before any query.

chatd makes them with uuid4 and stores the canonical form: 36 characters, lowercase hex in
8-4-4-4-12 groups. Input is accepted in either case, since UUIDs are case-insensitive (RFC 9562),
and lowercased so it matches what is stored. Any other text (braces, `urn:uuid:`, no hyphens, a
NUL, which PostgreSQL would refuse with an error) is a 400 naming the field: chatd never handed
it out, so it names nothing, and saying so reveals nothing about which sessions exist.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from chatd.errors import BadRequest

_HEX = "[0-9a-fA-F]"
_BODY = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
ID_PATTERN = f"^{_BODY}$"  # for the OpenAPI document (ECMA-262: no \Z there)
_ID = re.compile(_BODY)
EXAMPLE = "8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77"
_MESSAGE = f"must be an id as chatd gives them (a UUID like {EXAMPLE})"


def is_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


def parse_id(value: str, field: str) -> str:
    """An id from a path or query: its canonical form, or a 400 "invalid_id" naming `field`."""
    if not is_id(value):
        raise BadRequest(f"{field}: {_MESSAGE}", code="invalid_id", field=field)
    return value.lower()


def _canonical(value: str) -> str:
    if not is_id(value):
        # The error's type becomes the 400's code (chatd.core.wire.parse_model).
        raise PydanticCustomError("invalid_id", _MESSAGE)
    return value.lower()


# An id in a request body or frame (strict str first, then the form).
Id = Annotated[
    str,
    Field(json_schema_extra={"format": "uuid", "pattern": ID_PATTERN}),
    AfterValidator(_canonical),
]
