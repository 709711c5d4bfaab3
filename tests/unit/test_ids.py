"""Ids at the edge: canonical UUID text, either case on input, anything else a 400 naming it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import BaseModel

from chatd.core.ids import ID_PATTERN, Id, is_id, parse_id
from chatd.core.tokens import new_id
from chatd.core.wire import parse_model
from chatd.errors import BadRequest

ID = "8c1e7f0a-4d3b-4a53-9b1e-2f6d0c9a1b77"

NOT_IDS = [
    "",
    "x",
    "no-such-session",
    "\x00",
    f"{ID}\x00",
    f"{ID}\n",  # `$` would let a trailing newline through
    f" {ID}",
    f"{{{ID}}}",
    f"urn:uuid:{ID}",
    ID.replace("-", ""),
    ID[:-1],
    f"{ID}0",
    ID.replace("8", "g", 1),
    ID.replace("a", "\u0430"),  # a Cyrillic a
    "٣" * 8 + ID[8:],  # digits that are not ASCII
]


def test_ids_chatd_makes_are_ids_and_stay_as_they_are() -> None:
    for _ in range(100):
        made = new_id()
        assert is_id(made)
        assert parse_id(made, "sessionId") == made


def test_uppercase_is_accepted_and_lowercased() -> None:
    assert parse_id(ID.upper(), "jobId") == ID
    assert parse_id(str(uuid.UUID(ID)).upper(), "jobId") == ID


@pytest.mark.parametrize("value", NOT_IDS)
def test_anything_else_is_a_400_naming_the_field(value: str) -> None:
    assert not is_id(value)
    with pytest.raises(BadRequest) as info:
        parse_id(value, "sessionId")
    assert (info.value.status, info.value.code, info.value.field) == (
        400,
        "invalid_id",
        "sessionId",
    )
    assert info.value.message.startswith("sessionId: must be an id as chatd gives them")


class _Body(BaseModel):
    sessionId: Id
    replyTo: Id | None = None


@pytest.mark.parametrize("value", [*NOT_IDS, 5, None, [ID]])
def test_a_body_id_is_checked_the_same_way(value: Any) -> None:
    with pytest.raises(BadRequest) as info:
        parse_model(_Body, {"sessionId": value})
    assert info.value.field == "sessionId"
    assert info.value.code == ("invalid_id" if isinstance(value, str) else "invalid_field")


def test_a_body_id_is_lowercased() -> None:
    assert parse_model(_Body, {"sessionId": ID.upper(), "replyTo": ID}).sessionId == ID


def test_the_schema_says_uuid_and_gives_the_pattern() -> None:
    schema = _Body.model_json_schema()["properties"]["sessionId"]
    assert schema == {
        "type": "string",
        "format": "uuid",
        "pattern": ID_PATTERN,
        "title": "Sessionid",
    }
