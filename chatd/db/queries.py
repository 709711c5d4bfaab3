"""Named SQL blocks from sql/queries/*.sql, loaded once (from a checkout or an installed wheel).

A block starts with a line `-- name: <query_name>` and runs to the next such line. Names are
unique across files; `query(name)` is the only way chatd gets SQL text.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import LiteralString

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def sql_root() -> Path:
    """The sql/ directory: inside the package in a wheel, beside it in a checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "sql", package.parent / "sql"):
        if (candidate / "migrations").is_dir():
            return candidate
    raise FileNotFoundError(f"no sql/ directory beside or inside {package}")


def parse_blocks(text: str, source: str) -> dict[str, str]:
    """Split one .sql file into {name: sql}; a file with no named block is an error."""
    for line in text.splitlines():
        if re.match(r"^--\s*name\s*:", line) and not _NAME.match(line):
            raise ValueError(f"{source}: bad query name line {line!r} (use lower_snake_case)")
    parts = _NAME.split(text)
    if len(parts) < 3:
        raise ValueError(f"{source}: no '-- name:' block")
    if any(line.strip() and not line.lstrip().startswith("--") for line in parts[0].splitlines()):
        raise ValueError(f"{source}: SQL before the first '-- name:' line would be lost")
    blocks: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in blocks:
            raise ValueError(f"{source}: query {name!r} defined twice")
        if not body.strip():
            raise ValueError(f"{source}: query {name!r} is empty")
        blocks[name] = body.strip()
    return blocks


@cache
def all_queries() -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted((sql_root() / "queries").glob("*.sql")):
        for name, body in parse_blocks(path.read_text(encoding="utf-8"), path.name).items():
            if name in queries:
                raise ValueError(f"{path.name}: query {name!r} already defined in another file")
            queries[name] = body
    return queries


def query(name: str) -> LiteralString:
    # The text is ours, read from the package: as trusted as a literal in the source.
    return all_queries()[name]
