"""The alert rules' figures and their cooldown records (chat_alerts), cluster-wide.

Everything runs on the connection given: the alerter passes the one holding its leader lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chatd.db.pool import Connection
from chatd.db.queries import query
from chatd.ops.alerts import Figures


@dataclass(frozen=True)
class Claim:
    """A firing recorded in chat_alerts; `previous_*` is the record it replaced (None: none)."""

    rule: str
    fired_at: datetime  # the database's clock
    fired_count: int
    previous_fired_at: datetime | None
    previous_value: float | None


async def read_figures(conn: Connection, window_seconds: float) -> Figures:
    cur = await conn.execute(query("alert_figures"), {"window_seconds": window_seconds})
    row = await cur.fetchone()
    assert row is not None  # a SELECT of scalar subqueries over one row: always one row
    return Figures(window_seconds=window_seconds, **row)


async def read_last_fired(conn: Connection) -> dict[str, datetime]:
    """{rule: when it last fired} for the rules that ever fired."""
    rows = await (await conn.execute(query("alert_last_fired"))).fetchall()
    return {row["rule"]: row["last_fired_at"] for row in rows}


async def claim_firing(
    conn: Connection, rule: str, value: float, cooldown_seconds: float
) -> Claim | None:
    """Record that `rule` fires now, if its cooldown has passed; None if it has not (or another
    chatd recorded it first). Test and write are one statement."""
    params = {"rule": rule, "value": value, "cooldown_seconds": cooldown_seconds}
    row = await (await conn.execute(query("claim_alert"), params)).fetchone()
    return Claim(**row) if row else None


async def unclaim_firing(conn: Connection, claim: Claim) -> bool:
    """Undo `claim` (its post failed) so the rule fires again next round; False if the record
    has changed since (then it is left alone)."""
    params = {
        "rule": claim.rule,
        "fired_at": claim.fired_at,
        "fired_count": claim.fired_count,
        "previous_fired_at": claim.previous_fired_at,
        "previous_value": claim.previous_value,
    }
    if claim.previous_fired_at is None:
        cur = await conn.execute(query("forget_alert"), params)
    else:
        cur = await conn.execute(query("restore_alert"), params)
    return await cur.fetchone() is not None
