"""Query strings into pydantic models: the model is the one source of the parameters' names,
bounds and defaults, for the routes and for the OpenAPI document alike.

Unknown names are refused; numbers are whole ASCII digits only (no sign, exponent, underscore,
or other scripts' digits, all of which int() would take); text holds no control characters or
lone surrogates (PostgreSQL refuses a NUL with an error). Each refusal is a 400 naming the
parameter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from chatd.errors import BadRequest

M = TypeVar("M", bound=BaseModel)
_WHOLE = re.compile(r"[0-9]{1,19}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_query(model: type[M], args: Mapping[str, str]) -> M:
    unknown = sorted(set(args) - set(model.model_fields))
    if unknown:
        name = unknown[0]
        raise BadRequest(f"unknown query parameter {name!r}", code="unknown_field", field=name)
    values: dict[str, Any] = {}
    for name in args:
        raw = args[name]
        if _is_int(model, name):
            if not _WHOLE.fullmatch(raw.strip()):
                raise _refused(model, name)
            values[name] = int(raw)
        elif _CONTROL.search(raw) or not _encodable(raw):
            raise _refused(model, name)
        else:
            values[name] = raw
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0])
        if first["type"] == "missing":
            raise BadRequest(f"{name} is required", code="missing_field", field=name) from None
        raise _refused(model, name) from None


@functools.cache
def _properties(model: type[BaseModel]) -> dict[str, Any]:
    properties: dict[str, Any] = model.model_json_schema()["properties"]
    return properties


def _is_int(model: type[BaseModel], name: str) -> bool:
    schema = _properties(model)[name]
    return any("integer" in _types(s) for s in [schema, *schema.get("anyOf", [])])


def _types(schema: dict[str, Any]) -> set[str]:
    found = {schema["type"]} if "type" in schema else set()
    for option in schema.get("anyOf", []):
        found |= _types(option)
    return found


def _refused(model: type[BaseModel], name: str) -> BadRequest:
    """What `name` must be, in the words of its schema."""
    schema = _properties(model)[name]
    options = [schema, *schema.get("anyOf", [])]
    if any("integer" in _types(s) for s in options):
        low = next((s["minimum"] for s in options if "minimum" in s), 0)
        high = next((s["maximum"] for s in options if "maximum" in s), None)
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        message = f"{name} must be a whole number {bounds}"
    elif "enum" in schema:
        message = f"{name} must be one of {', '.join(map(str, schema['enum']))}"
    else:
        longest = schema.get("maxLength")
        limit = f" of at most {longest} characters" if longest is not None else ""
        message = f"{name} must be printable text{limit}"
    return BadRequest(message, code="invalid_query", field=name)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: PostgreSQL could not store or compare it
        return False
    return True
