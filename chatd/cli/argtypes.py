"""Argument types for the command line: each parses one value or raises ArgumentTypeError."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from chatd.core.durations import parse_duration, parse_when
from chatd.core.rating_filter import RatingFilter, parse_rating_filter


def duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def when(text: str) -> datetime:
    try:
        return parse_when(text, datetime.now(UTC))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def rating_filter(text: str) -> RatingFilter | None:
    try:
        return parse_rating_filter(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _number(text: str, *, low: float, strict: bool, high: float | None = None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < low or (strict and value == low) or (high is not None and value > high):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise argparse.ArgumentTypeError(
            f"must be {bound}{'' if high is None else f' and <= {high:g}'} (got {text})"
        )
    return value


def positive(text: str) -> float:
    return _number(text, low=0, strict=True)


def non_negative(text: str) -> float:
    return _number(text, low=0, strict=False)


def share(text: str) -> float:
    return _number(text, low=0, strict=False, high=1)


def count(text: str) -> int:
    value = _number(text, low=1, strict=False)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number (got {text})")
    return int(value)
