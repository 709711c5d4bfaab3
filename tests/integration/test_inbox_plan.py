"""The inbox's lists with 10,000 conversations: one query through an index (checked on the real
planner with real statistics), reading a page's worth of rows, never the table. A rare state
(10 waiting among 10,000) is found through idx_chat_sessions_inbox; a common one may walk the
sessions' updated_at index instead, which then stops after a page. Each row's unread count (for
the agent reading the list, who has read half of the conversations part way) is a short walk of
one session's messages by their (session_id, seq) index, never a scan."""

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
INSERT INTO chat_agents (id, name, email, role, password_hash)
VALUES ('anna', 'Anna', 'anna@shop.example', 'agent', 'x');
INSERT INTO chat_agent_reads (agent_id, session_id, last_read_seq)
SELECT 'anna', 's' || s, 2 FROM generate_series(2, 10000, 2) s;
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
        conn.execute("VACUUM ANALYZE chat_agent_reads")
        params = {"states": states, "agent_id": None, "limit": 50, "reader": "anna"}
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
        for table in ("chat_messages", "chat_agent_reads"):  # chat_agents is a handful of rows
            walks = [n for n in nodes if n.get("Relation Name") == table]
            assert walks, table
            assert all("Index" in n["Node Type"] for n in walks), table
        listed = conn.execute(query("inbox_list"), params).fetchall()
        unread = {row["id"]: row["unread"] for row in listed}
        # Read up to 2 of 3: one unread; never opened: all 3.
        assert {unread[i] for i in unread if int(i[1:]) % 2 == 0} == {1}
        assert {unread[i] for i in unread if int(i[1:]) % 2 == 1} <= {3}
