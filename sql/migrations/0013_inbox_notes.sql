-- The inbox's tools (README "Staff inbox"): internal notes staff write in a conversation, and
-- the canned responses admins keep for agents to insert with /shortcut.

-- A note is the staff's, never the shopper's: it is not a chat_messages row (no seq, nothing
-- any shopper's read or n8n's job ever selects), and its notification is its own kind, which
-- only the inbox's feed is given (chatd/realtime/router.py).
CREATE TABLE chat_notes (
    id          text PRIMARY KEY,
    session_id  text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    agent_id    text REFERENCES chat_agents (id) ON DELETE SET NULL,
    agent_name  text NOT NULL,       -- the writer's name then (an account may be renamed or go)
    content     text NOT NULL CHECK (length(content) > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_chat_notes_session ON chat_notes (session_id, created_at, id);

CREATE FUNCTION chatd_notify_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('chatd_events', json_build_object(
        'type', 'note', 'sessionId', NEW.session_id, 'noteId', NEW.id)::text);
    RETURN NULL;
END $$;

CREATE TRIGGER chat_notes_events AFTER INSERT ON chat_notes
    FOR EACH ROW EXECUTE FUNCTION chatd_notify_note();

CREATE TABLE chat_canned_responses (
    id          text PRIMARY KEY,
    shortcut    text NOT NULL UNIQUE CHECK (shortcut ~ '^[a-z0-9_-]{1,32}$'),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 120),
    content     text NOT NULL CHECK (length(content) > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
