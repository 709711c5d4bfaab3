-- The staff inbox, live (README "Staff inbox"): unread counts kept per agent and conversation,
-- and every process told at once when an agent's browser sessions end, so its open inbox
-- sockets close then rather than at their next periodic check.

-- How far each agent has read each conversation: the seq of the last message seen. Unread is
-- what the shopper wrote after it; the same on every device of the agent, and after a reload.
CREATE TABLE chat_agent_reads (
    agent_id       text NOT NULL REFERENCES chat_agents (id) ON DELETE CASCADE,
    session_id     text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    last_read_seq  bigint NOT NULL CHECK (last_read_seq >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, session_id)
);
-- A session's cleanup deletes its rows (the cascade looks them up by session).
CREATE INDEX idx_chat_agent_reads_session ON chat_agent_reads (session_id);

-- Browser sessions ended (sign-out, disable, new password, idle sweep): one notification per
-- agent and statement; each process re-checks that agent's inbox sockets (routes_inbox_ws.py).
CREATE FUNCTION chatd_notify_staff_signed_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('chatd_events', json_build_object(
        'type', 'staff_signed_out', 'agentId', g.agent_id)::text)
       FROM (SELECT DISTINCT agent_id FROM gone) AS g;
    RETURN NULL;
END $$;

CREATE TRIGGER chat_agent_sessions_ended AFTER DELETE ON chat_agent_sessions
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION chatd_notify_staff_signed_out();
