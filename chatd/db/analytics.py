"""Conversation insights in PostgreSQL: the hourly rollups the maintenance leader keeps, and the
reads of the analytics API (rolled-up hours plus the hours since, aggregated live).

An hour is rolled up once, when it is over (ROLLUP_MARGIN_SECONDS later): the events counted
(a session started, a message stored, a rating given) never move to another hour, and the rows
may be deleted by cleanup soon after, so a later recompute would only lose numbers. Cleanup
deletes a session only once its last activity is rolled up (sql/queries/maintenance.sql).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from chatd.core.insights import ANSWER_BOUNDS, Hourly
from chatd.db.pool import Pool
from chatd.db.queries import query

log = structlog.get_logger(__name__)

# Transactions that began in an hour may still commit after it: their rows are counted if they
# commit within this margin (chatd's statements are bounded far below it).
ROLLUP_MARGIN_SECONDS = 300.0
ROLLUP_BATCH = timedelta(days=7)  # hours per statement: a short transaction each


@dataclass(frozen=True)
class Rollup:
    rolled_until: datetime  # every hour before it is rolled up (or there was nothing to roll up)
    hours: int  # hours rolled up by this call


class AnalyticsStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def roll_up(self) -> Rollup:
        """Roll up every hour that is over and not rolled up yet, oldest first, in batches.
        Run it as the maintenance leader: two at once would do the same work twice."""
        hours = 0
        async with self._pool.connection() as conn:
            plan = await (
                await conn.execute(
                    query("analytics_rollup_plan"), {"margin_seconds": ROLLUP_MARGIN_SECONDS}
                )
            ).fetchone()
            assert plan is not None  # the migration inserted the one state row
            target = plan["target"]
            since = plan["rolled_until"] or plan["oldest"] or target
            while since < target:
                until = min(since + ROLLUP_BATCH, target)
                params = {"since": since, "until": until, "bounds": list(ANSWER_BOUNDS)}
                row = await (await conn.execute(query("analytics_rollup"), params)).fetchone()
                assert row is not None  # the state row is always there
                hours += int(row["hours"])
                since = until
        if hours:
            log.info("analytics_rolled_up", hours=hours, until=since.isoformat())
        return Rollup(since, hours)

    async def rollup_target(self) -> datetime:
        """Where a rollup now would end (what `chatd cleanup --dry-run` counts with)."""
        async with self._pool.connection() as conn:
            plan = await (
                await conn.execute(
                    query("analytics_rollup_plan"), {"margin_seconds": ROLLUP_MARGIN_SECONDS}
                )
            ).fetchone()
        assert plan is not None  # the migration inserted the one state row
        target: datetime = plan["target"]
        return target

    async def figures(
        self, since: datetime, until: datetime, *, intents: int
    ) -> tuple[datetime | None, list[Hourly], list[tuple[str, int]]]:
        """(where the rollups end, every hour of [since, until), the `intents` top intents)."""
        async with self._pool.connection() as conn:
            state = await (await conn.execute(query("analytics_rolled_until"))).fetchone()
            rolled_until = state["rolled_until"] if state else None
            params = {
                "since": since,
                "until": until,
                "rolled": max(rolled_until, since) if rolled_until else since,
                "bounds": list(ANSWER_BOUNDS),
                "limit": intents,
            }
            rows = await (await conn.execute(query("analytics_hours"), params)).fetchall()
            named = await (await conn.execute(query("analytics_intents"), params)).fetchall()
        return (
            rolled_until,
            [hourly_from_row(row) for row in rows],
            [(row["intent"], int(row["n"])) for row in named],
        )


def hourly_from_row(row: Mapping[str, Any]) -> Hourly:
    """A row of chatd_analytics_hours (or of the rollup table, the same columns)."""
    return Hourly(
        **{**row, "answer_buckets": tuple(row["answer_buckets"]), "ratings": tuple(row["ratings"])}
    )
