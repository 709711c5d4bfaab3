"""The rating filter of search and export: "", 1-5, rated, unrated (chatd/core/rating_filter.py)."""

from __future__ import annotations

import pytest

from chatd.core.rating_filter import RatingFilter, parse_rating_filter


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("", None),
        ("  ", None),
        ("1", RatingFilter(rated=True, rating=1)),
        ("5", RatingFilter(rated=True, rating=5)),
        ("rated", RatingFilter(rated=True)),
        (" Unrated ", RatingFilter(rated=False)),
    ],
)
def test_parses_values_and_words(raw: str, parsed: RatingFilter | None) -> None:
    assert parse_rating_filter(raw) == parsed


@pytest.mark.parametrize("raw", ["0", "6", "4.5", "-1", "good", "05"])
def test_anything_else_is_refused_naming_the_choices(raw: str) -> None:
    with pytest.raises(ValueError, match="rating must be one of 1, 2, 3, 4, 5, rated, unrated"):
        parse_rating_filter(raw)
