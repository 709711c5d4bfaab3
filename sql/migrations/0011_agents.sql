-- Staff and human takeover (README "Staff inbox"): agents with accounts and browser sessions,
-- the conversation state of every chat session (who answers it: the bot, nobody yet, an agent),
-- agents' messages, and an audit trail per conversation.

CREATE TABLE chat_agents (
    id             text PRIMARY KEY,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),   -- shown to shoppers
    email          text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'agent')),
    password_hash  text NOT NULL,                 -- argon2id, salt and parameters included
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- Emails are compared case-insensitively: "Anna@shop" and "anna@shop" are one account.
CREATE UNIQUE INDEX chat_agents_email ON chat_agents (lower(email));

-- A signed-in browser. Only the token's hash is stored; a row is good while its agent is not
-- disabled and it was used within the idle timeout (checked on every request).
CREATE TABLE chat_agent_sessions (
    token_hash    bytea PRIMARY KEY,
    agent_id      text NOT NULL REFERENCES chat_agents (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_chat_agent_sessions_agent ON chat_agent_sessions (agent_id);
CREATE INDEX idx_chat_agent_sessions_last_seen ON chat_agent_sessions (last_seen_at);

-- bot: n8n answers (as before). waiting: a person was asked for; nobody holds it yet.
-- human: agent_id holds it; n8n is not called. closed: the conversation ended (status
-- 'closed', 0010's closed_by says by whom: the shopper, or staff from the admin API or the
-- inbox); nobody holds it and it takes no more messages. Changed only by the session's actor
-- (chatd/actors/session.py).
ALTER TABLE chat_sessions
    ADD COLUMN conversation_state text NOT NULL DEFAULT 'bot'
        CHECK (conversation_state IN ('bot', 'waiting', 'human', 'closed')),
    ADD COLUMN agent_id text REFERENCES chat_agents (id) ON DELETE SET NULL,
    ADD COLUMN handoff_reason text,
    ADD COLUMN state_changed_at timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT chat_sessions_human_has_agent
        CHECK ((conversation_state = 'human') = (agent_id IS NOT NULL));
UPDATE chat_sessions SET conversation_state = 'closed' WHERE status = 'closed';
-- The inbox lists (waiting, mine, all open, closed), newest activity first: one index walk.
-- Not partial on status: the closed list is of ended sessions.
CREATE INDEX idx_chat_sessions_inbox ON chat_sessions (conversation_state, updated_at DESC, id);

ALTER TABLE chat_messages DROP CONSTRAINT chat_messages_sender_type_check;
ALTER TABLE chat_messages ADD CONSTRAINT chat_messages_sender_type_check
    CHECK (sender_type IN ('user', 'bot', 'system', 'agent'));

-- Who took, replied, transferred, handed back, closed, and when.
CREATE TABLE chat_audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id  text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    agent_id    text REFERENCES chat_agents (id) ON DELETE SET NULL,  -- NULL: shopper or bot
    action      text NOT NULL,     -- handoff_requested, taken, replied, transferred, handed_back, closed
    detail      jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_chat_audit_session ON chat_audit (session_id, id);
