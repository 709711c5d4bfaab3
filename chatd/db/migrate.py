"""Ordered, forward-only migrations from sql/migrations/NNNN_name.sql, recorded with checksums.

The whole run holds an advisory lock, so two processes starting together apply each file once;
each file runs in its own transaction; an applied file that was edited since is refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import LiteralString

import trio

from chatd.db.pool import Connection
from chatd.db.queries import query, sql_root
from chatd.errors import MigrationError

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: LiteralString

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or sql_root() / "migrations"
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version} used twice")
        found[version] = Migration(version, match.group(2), path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def pending(conn: Connection, migrations: list[Migration] | None = None) -> list[Migration]:
    """Migrations not yet applied; MigrationError if the applied ones do not match the files."""
    migrations = discover() if migrations is None else migrations
    row = await (await conn.execute(query("migration_table_exists"))).fetchone()
    if not row or not row["present"]:
        return migrations
    applied = {
        r["version"]: r for r in await (await conn.execute(query("migration_applied"))).fetchall()
    }
    known = {m.version: m for m in migrations}
    for version, rec in applied.items():
        mine = known.get(version)
        if mine is None:
            raise MigrationError(
                f"the database has migration {version:04d}_{rec['name']} that this chatd does not"
                " know: it was migrated by a newer chatd; upgrade this one"
            )
        if mine.checksum != rec["checksum"]:
            raise MigrationError(
                f"{mine.filename} was edited after it was applied (checksum differs); migrations"
                " are forward-only: restore the file and add a new migration instead"
            )
    return [m for m in migrations if m.version not in applied]


async def migrate(
    conn: Connection,
    migrations: list[Migration] | None = None,
    on_apply: Callable[[Migration], None] | None = None,
) -> list[Migration]:
    """Apply what is pending, under the advisory lock; returns what this call applied."""
    await conn.execute(query("migration_lock"))
    try:
        await conn.execute(query("migration_table"))
        todo = await pending(conn, migrations)
        for migration in todo:
            if on_apply is not None:
                on_apply(migration)
            async with conn.transaction():
                await conn.execute(migration.sql)  # our own file, trusted like a literal
                await conn.execute(
                    query("migration_record"),
                    {
                        "version": migration.version,
                        "name": migration.name,
                        "checksum": migration.checksum,
                    },
                )
        return todo
    finally:
        with trio.CancelScope(shield=True):
            await conn.execute(query("migration_unlock"))
