"""Named SQL blocks: parsing rules, and every query name unique, existing and used by chatd/."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

import chatd
from chatd.db.queries import all_queries, parse_blocks, query, sql_root

PACKAGE = Path(chatd.__file__).resolve().parent


def test_parse_blocks_splits_named_blocks() -> None:
    text = "-- name: first\nSELECT 1\n\n--name:second\n-- a comment kept\nSELECT 2;\n"
    assert parse_blocks(text, "x.sql") == {
        "first": "SELECT 1",
        "second": "-- a comment kept\nSELECT 2;",
    }


def test_parse_blocks_ignores_a_header_before_the_first_block() -> None:
    text = "-- Queries about widgets.\n\n-- name: widget\nSELECT 1\n"
    assert parse_blocks(text, "x.sql") == {"widget": "SELECT 1"}


def test_parse_blocks_rejects_a_name_used_twice_in_a_file() -> None:
    with pytest.raises(ValueError, match=r"x\.sql: query 'a' defined twice"):
        parse_blocks("-- name: a\nSELECT 1\n-- name: a\nSELECT 2\n", "x.sql")


@pytest.mark.parametrize(
    "text",
    ["-- name: a\n", "-- name: a\n   \n\n-- name: b\nSELECT 1", "-- name: b\nSELECT 1\n-- name: a"],
)
def test_parse_blocks_rejects_an_empty_block(text: str) -> None:
    with pytest.raises(ValueError, match="is empty"):
        parse_blocks(text, "x.sql")


@pytest.mark.parametrize("text", ["", "SELECT 1\n", "-- just a comment\n", "-- name a\nSELECT 1"])
def test_parse_blocks_rejects_a_file_without_blocks(text: str) -> None:
    with pytest.raises(ValueError, match=r"x\.sql: no '-- name:' block"):
        parse_blocks(text, "x.sql")


def test_all_queries_loads_every_file_with_globally_unique_names() -> None:
    files = sorted((sql_root() / "queries").glob("*.sql"))
    assert files
    per_file = [parse_blocks(f.read_text(encoding="utf-8"), f.name) for f in files]
    names = [name for blocks in per_file for name in blocks]
    assert len(names) == len(set(names)), "a query name is defined in two files"
    loaded = all_queries()
    assert sorted(loaded) == sorted(names)
    assert all(body.strip() for body in loaded.values())


def test_query_returns_the_block_text_and_refuses_unknown_names() -> None:
    name, body = next(iter(all_queries().items()))
    assert query(name) == body
    with pytest.raises(KeyError):
        query("no_such_query")


@cache
def query_calls() -> tuple[tuple[str, int, ast.Call], ...]:
    """Every call `query(...)` in chatd/, with its file and line."""
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "query":
                calls.append((str(path.relative_to(PACKAGE.parent)), node.lineno, node))
    return tuple(calls)


@cache
def used_names() -> frozenset[str]:
    return frozenset(
        call.args[0].value
        for _, _, call in query_calls()
        if call.args and isinstance(call.args[0], ast.Constant)
    )


def test_chatd_makes_query_calls() -> None:
    assert len(query_calls()) >= len(all_queries()) // 2  # the scan itself finds things


def test_every_query_call_names_an_existing_query_by_literal() -> None:
    known = set(all_queries())
    for where, line, call in query_calls():
        assert len(call.args) == 1, f"{where}:{line}: query() takes one name"
        arg = call.args[0]
        assert isinstance(arg, ast.Constant), f"{where}:{line}: query() needs a string literal"
        assert isinstance(arg.value, str), f"{where}:{line}: query() needs a string literal"
        assert arg.value in known, f"{where}:{line}: no query named {arg.value!r} in sql/queries"


@pytest.mark.parametrize("name", sorted(all_queries()))
def test_every_query_is_used_in_chatd(name: str) -> None:
    assert name in used_names(), f'query "{name}" is defined in sql/queries but never used'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- name: Bad-Name\nSELECT 1\n", "bad query name line"),
        ("-- name: a\nSELECT 1\n-- name : b-c\nSELECT 2\n", "bad query name line"),
        ("SELECT 0;\n-- name: a\nSELECT 1\n", "SQL before the first"),
    ],
)
def test_parse_blocks_refuses_text_it_would_silently_lose(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_blocks(text, "x.sql")
