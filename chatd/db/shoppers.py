"""A shopper's data on request (sql/queries/shoppers.sql): what deleting it would take, the
deletion itself with its audit record, and the audit. Exporting it is chatd/db/export.py's.

A deletion is one transaction: their sessions locked, every row hanging on them deleted and
counted per table, the audit written (counts and a salted hash of the identifier, never the
content). Then a vacuum of the tables it reached, so the deleted rows' bytes and index entries
(the search index's too) are gone from the files now, not at autovacuum's next pass; it runs
after the commit (VACUUM cannot run in a transaction), so a vacuum that fails or times out
leaves that to autovacuum and says so, and the deletion stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import structlog
from psycopg.types.json import Jsonb

from chatd.core.tokens import new_id
from chatd.db.cleanup import FileDeleter
from chatd.db.export import ExportRange
from chatd.db.pool import Pool
from chatd.db.queries import query

log = structlog.get_logger(__name__)

VACUUM_TIMEOUT_MS = 300_000


@dataclass(frozen=True)
class Shopper:
    """Whose data: a user id (exact), or a guest email (ignoring case and surrounding spaces)."""

    user_id: str | None = None
    email: str | None = None

    def __post_init__(self) -> None:
        if (self.user_id is None) == (self.email is None):
            raise ValueError("a shopper is a user id or an email, one of them")

    @property
    def subject(self) -> str:
        return "user_id" if self.user_id is not None else "email"

    @property
    def value(self) -> str:
        """The identifier as matched and hashed."""
        return self.user_id if self.user_id is not None else str(self.email).strip().lower()

    def params(self) -> dict[str, str | None]:
        return {"user_id": self.user_id, "email": self.value if self.email is not None else None}

    def export_range(self) -> ExportRange:
        return ExportRange(user_id=self.params()["user_id"], email=self.params()["email"])

    def named(self) -> dict[str, str]:
        """As an export names them: {"userId": ...} or {"email": ...}."""
        return {"userId": self.value} if self.user_id is not None else {"email": self.value}

    def describe(self) -> str:
        return f"user id {self.user_id!r}" if self.user_id is not None else f"email {self.value!r}"


@dataclass(frozen=True)
class Holdings:
    sessions: int
    messages: int


@dataclass(frozen=True)
class Erasure:
    """One audit record: what was deleted, when, on whose request, for which (hashed) shopper."""

    id: str
    erased_at: datetime
    requested_by: str  # "cli", or "admin api from <address>"
    subject: str  # "user_id" or "email"
    subject_hash: str
    deleted: dict[str, int]  # rows per table


@dataclass(frozen=True)
class Erased:
    erasure: Erasure
    vacuumed: bool  # False: the vacuum failed or was not asked for; autovacuum will do it


async def holdings(pool: Pool, shopper: Shopper) -> Holdings:
    async with pool.connection() as conn:
        cur = await conn.execute(query("shopper_counts"), shopper.params(), prepare=False)
        row = await cur.fetchone()
    assert row is not None  # count(*) always answers
    return Holdings(row["sessions"], row["messages"])


async def erase_shopper(
    pool: Pool,
    shopper: Shopper,
    requested_by: str,
    files: FileDeleter | None,
    *,
    vacuum: bool = True,
) -> Erased:
    """Delete every session of `shopper` and all that hangs on them, and record it (also when
    there was nothing: the request was answered). `files`: the disk store, if one is set."""
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(query("shopper_sessions_lock"), shopper.params(), prepare=False)
        ids = [row["id"] for row in await cur.fetchall()]
        cur = await conn.execute(query("shopper_disk_files"), {"ids": ids})
        on_disk = [row["id"] for row in await cur.fetchall()]
        cur = await conn.execute(query("erase_sessions"), {"ids": ids})
        counted = await cur.fetchone()
        assert counted is not None  # a function call answers one row
        params = {
            "id": new_id(),
            "requested_by": requested_by,
            "subject": shopper.subject,
            "value": shopper.value,
            "deleted": Jsonb(counted["deleted"]),
        }
        row = await (await conn.execute(query("erasure_record"), params)).fetchone()
    assert row is not None  # INSERT ... RETURNING
    if files is not None and on_disk:
        await files.delete(on_disk)  # their rows are gone: committed above
    erasure = _erasure(row)
    log.info(
        "shopper_erased",
        erasure_id=erasure.id,
        subject=erasure.subject,
        requested_by=requested_by,
        deleted=erasure.deleted,
    )
    return Erased(erasure, vacuum and await vacuum_erased(pool))


async def vacuum_erased(pool: Pool) -> bool:
    """Vacuum what a deletion reaches; False (logged) when it could not finish."""
    try:
        async with pool.connection() as conn:
            await conn.execute(query("statement_timeout_set"), {"value": str(VACUUM_TIMEOUT_MS)})
            try:
                await conn.execute(query("vacuum_erased"))
            finally:
                await conn.execute(query("statement_timeout_reset"))
    except psycopg.Error as exc:
        log.warning("erasure_vacuum_failed", error=str(exc), hint="autovacuum will do it")
        return False
    return True


async def erasures(pool: Pool, *, limit: int, shopper: Shopper | None = None) -> list[Erasure]:
    """Audit records, newest first; only `shopper`'s when given (found by hashing it again)."""
    params = {
        "limit": limit,
        "subject": shopper.subject if shopper else None,
        "value": shopper.value if shopper else None,
    }
    async with pool.connection() as conn:
        cur = await conn.execute(query("erasures_list"), params, prepare=False)
        return [_erasure(row) for row in await cur.fetchall()]


def _erasure(row: dict[str, Any]) -> Erasure:
    return Erasure(
        row["id"],
        row["erased_at"],
        row["requested_by"],
        row["subject"],
        row["subject_hash"],
        {table: int(n) for table, n in row["deleted"].items()},
    )
