"""Search and export narrowed by the shopper's rating: any, one value 1-5, rated or not rated.

Its own module, free of pydantic: the command line parses it, and imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass

RATING_FILTERS = ("1", "2", "3", "4", "5", "rated", "unrated")


@dataclass(frozen=True)
class RatingFilter:
    """Conversations rated (rated=True; with `rating`, that value only) or not rated."""

    rated: bool
    rating: int | None = None


def parse_rating_filter(raw: str) -> RatingFilter | None:
    """ "" (any conversation), "1".."5", "rated" or "unrated"; ValueError for anything else."""
    value = raw.strip().lower()
    if not value:
        return None
    if value in ("rated", "unrated"):
        return RatingFilter(rated=value == "rated")
    if value in RATING_FILTERS:
        return RatingFilter(rated=True, rating=int(value))
    raise ValueError(f"rating must be one of {', '.join(RATING_FILTERS)} (got {raw!r})")
