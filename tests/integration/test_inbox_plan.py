"""The inbox's lists with 10,000 conversations: one query through an index (checked on the real
planner with real statistics), reading a page's worth of rows, never the table. A rare state
(10 waiting among 10,000) is found through idx_chat_sessions_inbox; a common one may walk the
sessions' updated_at index instead, which then stops after a page."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row

from chatd.db.queries import query
from tests.integration.test_claim_plan import _nodes, _plan

FILL = """
INSERT INTO chat_sessions (id, token_hash, expires_at, updated_at, conversation_state, status)
SELECT 's' || s, '\\x00', now() + interval '1 day', now() - s * interval '1 second',
       CASE WHEN s % 1000 = 0 THEN 'waiting' WHEN s % 5 = 0 THEN 'closed' ELSE 'bot' END,
       CASE WHEN s % 5 = 0 AND s % 1000 <> 0 THEN 'closed' ELSE 'active' END
  FROM generate_series(1, 10000) s;
INSERT INTO chat_messages (id, session_id, sender_type, content, status, seq)
SELECT 'm' || s || '-' || n, 's' || s, 'user', 'hi', 'delivered', n
  FROM generate_series(1, 10000) s, generate_series(1, 3) n;
"""


@pytest.mark.parametrize(
    ("states", "rows", "index"),
    [
        (["waiting"], 10, "idx_chat_sessions_inbox"),
        (["bot", "waiting", "human"], 50, None),
        (["closed"], 50, None),
    ],
)
def test_inbox_list_reads_a_page_through_an_index(
    database_url: str, states: list[str], rows: int, index: str | None
) -> None:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(FILL)
        conn.execute("VACUUM ANALYZE chat_sessions")
        conn.execute("VACUUM ANALYZE chat_messages")
        params = {"states": states, "agent_id": None, "limit": 50}
        plan = _plan(conn, query("inbox_list"), params)
        nodes = _nodes(plan["Plan"])
        sessions = [n for n in nodes if n.get("Relation Name") == "chat_sessions"]
        assert not [n for n in sessions if n["Node Type"] == "Seq Scan"], "scans every session"
        assert sessions
        assert all("Index" in n["Node Type"] for n in sessions)
        if index is not None:
            assert any(n.get("Index Name") == index for n in sessions)
        assert plan["Plan"]["Actual Rows"] == rows
        # A page, not the table: the newest message of each listed session, by its seq index.
        assert (
            plan["Plan"].get("Shared Hit Blocks", 0) + plan["Plan"].get("Shared Read Blocks", 0)
            < 2_000
        )
