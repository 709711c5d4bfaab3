"""The claim query stays cheap as completed jobs pile up and lanes back up (DESIGN.md: the claim
under a growing backlog). Checked on the real planner with real statistics."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg.rows import dict_row

from chatd.db.owner import OWNER_LOCK_NAMESPACE
from chatd.db.queries import query

FILL = """
INSERT INTO chat_sessions (id, token_hash, expires_at)
SELECT 's' || s, '\\x00', now() + interval '1 day' FROM generate_series(1, 500) s;
INSERT INTO chat_messages (id, session_id, sender_type, content, status, seq)
SELECT 'm' || s || '-' || n, 's' || s, 'user', 'hi', 'pending', n
  FROM generate_series(1, 500) s, generate_series(1, 20) n;
INSERT INTO chat_webhook_queue (id, message_id, session_id, seq, webhook_url, payload, status,
                                next_retry_at)
SELECT 'j' || s || '-' || n, 'm' || s || '-' || n, 's' || s, n, 'demo', '{}',
       CASE WHEN n <= 15 THEN 'completed' WHEN n = 16 AND s <= 5 THEN 'processing'
            ELSE 'pending' END,
       now() - interval '1 hour' + n * interval '1 second'
  FROM generate_series(1, 500) s, generate_series(1, 20) n;
UPDATE chat_webhook_queue SET lease_id = gen_random_uuid(), locked_until = now() + interval '1 hour'
 WHERE status = 'processing';
"""


CLAIM = {"worker": "test", "lease_seconds": 60, "owner_token": None}
RESCUE = {"namespace": OWNER_LOCK_NAMESPACE, "own_token": 1}  # a rescuer holding lock 1


def _plan(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> dict[str, Any]:
    rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params).fetchall()
    plan: dict[str, Any] = json.loads(json.dumps(rows[0]["QUERY PLAN"]))[0]
    return plan


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def test_claim_walks_only_the_pending_index_with_a_large_history(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(FILL)
        conn.execute("VACUUM ANALYZE chat_webhook_queue")
        conn.execute("BEGIN")
        plan = _plan(conn, query("claim_jobs"), {**CLAIM, "limit": 1})
        conn.execute("ROLLBACK")
        nodes = _nodes(plan["Plan"])
        assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], "the claim scans the table"
        assert any(n.get("Index Name") == "idx_chat_webhook_queue_pending" for n in nodes)
        # 7,500 completed rows and 2,500 blocked ones: a claim must touch a handful of pages
        assert plan["Plan"]["Shared Hit Blocks"] + plan["Plan"].get("Shared Read Blocks", 0) < 300
        claimed = conn.execute(query("claim_jobs"), {**CLAIM, "limit": 1}).fetchall()
        assert len(claimed) == 1
        # the head of a lane whose head is not processing: seq 16 of a session above 5
        assert claimed[0]["seq"] == 16
        assert int(claimed[0]["session_id"][1:]) > 5


def test_a_batch_claims_one_head_per_lane_and_skips_busy_lanes(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(FILL)
        conn.execute("VACUUM ANALYZE chat_webhook_queue")
        first = conn.execute(query("claim_jobs"), {**CLAIM, "limit": 200}).fetchall()
        # 495 lanes have a pending head (the other 5 are processing): 200 of them, one job each
        assert len(first) == 200
        assert {r["seq"] for r in first} == {16}
        assert len({r["session_id"] for r in first}) == 200
        assert all(int(r["session_id"][1:]) > 5 for r in first)
        rest = conn.execute(query("claim_jobs"), {**CLAIM, "limit": 1000}).fetchall()
        # the other 295 heads; every lane is now busy, so nothing behind them comes out
        assert len(rest) == 295
        assert {r["session_id"] for r in rest}.isdisjoint({r["session_id"] for r in first})
        assert conn.execute(query("claim_jobs"), {**CLAIM, "limit": 10}).fetchall() == []


def test_rescue_uses_the_lease_index(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(FILL)
        conn.execute(
            "UPDATE chat_webhook_queue SET locked_until = now() - interval '1 second'"
            " WHERE session_id = 's1' AND status = 'processing'"
        )
        conn.execute("VACUUM ANALYZE chat_webhook_queue")
        rescued = conn.execute(query("rescue_expired_leases"), RESCUE).fetchall()
        assert [(r["session_id"], r["owner_gone"]) for r in rescued] == [("s1", False)]
        status = conn.execute(
            "SELECT status, lease_id FROM chat_webhook_queue WHERE id = 'j1-16'"
        ).fetchone()
        assert status == {"status": "pending", "lease_id": None}


def test_rescue_takes_back_a_dead_owners_claims_and_walks_only_the_lease_index(
    database_url: str,
) -> None:
    """Claims of an owner whose advisory lock is held stay; those of an owner whose lock is gone
    come back at once, long before their lease ends; the rescue reads only processing jobs."""
    with (
        psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn,
        psycopg.connect(database_url, autocommit=True) as alive,
    ):
        conn.execute(FILL)
        alive.execute("SELECT pg_advisory_lock(%s, 1001)", [OWNER_LOCK_NAMESPACE])
        conn.execute(
            "UPDATE chat_webhook_queue SET owner_token = CASE WHEN session_id = 's1' THEN 1002"
            " ELSE 1001 END WHERE status = 'processing'"
        )
        conn.execute("VACUUM ANALYZE chat_webhook_queue")
        conn.execute("BEGIN")
        plan = _plan(conn, query("rescue_expired_leases"), RESCUE)
        conn.execute("ROLLBACK")
        nodes = _nodes(plan["Plan"])
        scanned = {n.get("Relation Name") for n in nodes if n["Node Type"] == "Seq Scan"}
        assert scanned <= {"pg_database"}, f"the rescue scans {scanned}"  # pg_database: one row
        # The jobs it looks at are the 5 processing ones (through an index on processing jobs),
        # not the 10,000 others.
        (scan,) = [
            n for n in nodes if n.get("Relation Name") == "chat_webhook_queue" and n.get("Filter")
        ]
        assert scan["Node Type"] in ("Index Scan", "Bitmap Heap Scan"), scan
        assert scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0) == 5
        assert plan["Plan"]["Shared Hit Blocks"] + plan["Plan"].get("Shared Read Blocks", 0) < 100
        assert plan["Plan"]["Shared Hit Blocks"] + plan["Plan"].get("Shared Read Blocks", 0) < 100
        # A rescuer without its own lock, or the dead owner itself (alive after all, its LISTEN
        # connection reconnecting), judges no owner.
        for own_token in (None, 1002):
            params = {**RESCUE, "own_token": own_token}
            assert conn.execute(query("rescue_expired_leases"), params).fetchall() == []
        rescued = conn.execute(query("rescue_expired_leases"), RESCUE).fetchall()
        assert [(r["session_id"], r["owner_gone"]) for r in rescued] == [("s1", True)]
        job = conn.execute(
            "SELECT status, lease_id, last_error FROM chat_webhook_queue WHERE id = 'j1-16'"
        ).fetchone()
        assert job is not None
        assert (job["status"], job["lease_id"]) == ("pending", None)
        assert job["last_error"].startswith("owner gone")
        # The live owner's four claims stay; once its lock goes, they come back too.
        assert conn.execute(query("rescue_expired_leases"), RESCUE).fetchall() == []
        alive.execute("SELECT pg_advisory_unlock(%s, 1001)", [OWNER_LOCK_NAMESPACE])
        rescued = conn.execute(query("rescue_expired_leases"), RESCUE).fetchall()
        assert sorted(r["session_id"] for r in rescued) == ["s2", "s3", "s4", "s5"]
