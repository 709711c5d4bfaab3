"""Parsing untrusted JSON: strict syntax, bounded nesting, strings PostgreSQL can store.

JSON can carry what PostgreSQL cannot store (NUL, lone UTF-16 surrogates), what Python's json
accepts but JSON forbids (NaN, Infinity), and nesting deep enough to exhaust the stack. Each is a
400 naming the field, before anything reaches a model or the database.
"""

from __future__ import annotations

import json
import math
from typing import Any

from chatd.errors import BadRequest

MAX_NESTING = 32


def _reject_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not valid JSON", code="invalid_json")


def _finite_float(text: str) -> float:
    # 1e999 is valid JSON but becomes inf, which json.dumps writes back as the invalid Infinity.
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest("a number in the JSON is out of range", code="invalid_json")
    return value


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("request body is not valid UTF-8", code="invalid_json") from None
    if not text.strip():
        raise BadRequest("request body is empty; send a JSON object", code="invalid_json")
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="invalid_json",
        ) from None
    except ValueError:
        # int() refuses literals over sys.get_int_max_str_digits() (4300) digits.
        raise BadRequest("a number in the JSON has too many digits", code="invalid_json") from None
    except RecursionError:
        raise BadRequest("JSON nested too deeply", code="too_deep") from None
    check_value(value, "", 0)
    return value


def check_value(value: Any, path: str, depth: int) -> None:
    """Walk a parsed JSON value: bounded depth, finite numbers, and storable strings in keys and
    values."""
    if depth > MAX_NESTING:
        raise BadRequest(
            f"JSON nested deeper than {MAX_NESTING} levels", code="too_deep", field=path or None
        )
    if isinstance(value, str):
        check_text(value, path)
    elif isinstance(value, float) and not math.isfinite(value):
        # parse_json never makes one; other decoders (a JWT's payload) do, and jsonb refuses it.
        raise BadRequest("a number is out of range", code="invalid_json", field=path or None)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, path)  # a bad key is named by where it sits, never echoed back
            check_value(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_value(item, f"{path}[{index}]", depth + 1)


def check_text(text: str, field: str) -> None:
    if "\x00" in text:
        raise BadRequest(
            "text must not contain NUL characters", code="invalid_characters", field=field or None
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(
            "text contains a lone UTF-16 surrogate", code="invalid_characters", field=field or None
        ) from None


def nesting_depth(value: Any) -> int:
    """Levels of containers: a scalar is 0, {} is 1, {"a": {}} is 2."""
    if isinstance(value, dict):
        return 1 + max((nesting_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((nesting_depth(v) for v in value), default=0)
    return 0
