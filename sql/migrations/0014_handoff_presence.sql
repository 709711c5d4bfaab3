-- Nobody there (README "Staff inbox"): which agents are online, and a record of every handoff
-- (who asked, whether anyone could answer, when a person took it and first replied), from
-- which the shopper's notice, the staff alerts and the metrics are made.

-- One row per open inbox WebSocket, in whichever chatd process holds it. The process renews
-- expires_at while the socket lives and deletes the row when it ends; a process killed on the
-- spot leaves its rows to expire, so an agent is never shown online for longer than the TTL.
CREATE UNLOGGED TABLE chat_agent_presence (
    connection_id  text PRIMARY KEY,
    agent_id       text NOT NULL REFERENCES chat_agents (id) ON DELETE CASCADE,
    expires_at     timestamptz NOT NULL
);
CREATE INDEX idx_chat_agent_presence_expires ON chat_agent_presence (expires_at);

-- One row per handoff, written by the trigger below from the audit trail, so each path that
-- changes the state (the shopper's request, a bot reply's action, an agent taking a bot
-- conversation at will) records it in the same statement. requested_by: shopper, bot, agent.
CREATE TABLE chat_handoffs (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id         text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    requested_by       text NOT NULL CHECK (requested_by IN ('shopper', 'bot', 'agent')),
    requested_at       timestamptz NOT NULL DEFAULT now(),
    checked_at         timestamptz,   -- availability judged (and the shopper told, if nobody)
    nobody             boolean,       -- nobody could answer then (outside hours or no agent online)
    waiting_alerted_at timestamptz,   -- the "waited too long" alert went out
    taken_at           timestamptz,   -- an agent took it
    settled_at         timestamptz,   -- it stopped waiting: taken, handed back or closed
    first_reply_at     timestamptz    -- that agent's first reply
);
CREATE INDEX idx_chat_handoffs_session ON chat_handoffs (session_id, id);
-- The handoff watch's rounds: only handoffs not yet judged, or still waiting.
CREATE INDEX idx_chat_handoffs_unchecked ON chat_handoffs (requested_at) WHERE checked_at IS NULL;
CREATE INDEX idx_chat_handoffs_waiting ON chat_handoffs (requested_at) WHERE settled_at IS NULL;

CREATE FUNCTION chat_handoff_from_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.action = 'handoff_requested' THEN
        INSERT INTO chat_handoffs (session_id, requested_by, requested_at)
        VALUES (NEW.session_id, coalesce(NEW.detail ->> 'by', 'shopper'), NEW.created_at);
    ELSIF NEW.action = 'taken' THEN
        UPDATE chat_handoffs SET taken_at = NEW.created_at, settled_at = NEW.created_at
         WHERE session_id = NEW.session_id AND settled_at IS NULL;
        IF NOT FOUND THEN  -- taken from the bot, nobody asked: the agent's own handoff
            INSERT INTO chat_handoffs (session_id, requested_by, requested_at, checked_at,
                                       nobody, taken_at, settled_at)
            VALUES (NEW.session_id, 'agent', NEW.created_at, NEW.created_at, false,
                    NEW.created_at, NEW.created_at);
        END IF;
    ELSIF NEW.action = 'replied' THEN
        UPDATE chat_handoffs SET first_reply_at = NEW.created_at
         WHERE id = (SELECT max(id) FROM chat_handoffs WHERE session_id = NEW.session_id)
           AND taken_at IS NOT NULL AND first_reply_at IS NULL;
    ELSIF NEW.action IN ('handed_back', 'closed') THEN
        -- Ended untaken (closed while waiting): nothing is waiting any more.
        UPDATE chat_handoffs SET settled_at = NEW.created_at,
                                 checked_at = coalesce(checked_at, NEW.created_at)
         WHERE session_id = NEW.session_id AND settled_at IS NULL;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER chat_audit_handoffs AFTER INSERT ON chat_audit
    FOR EACH ROW EXECUTE FUNCTION chat_handoff_from_audit();
