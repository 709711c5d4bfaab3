-- Sessions of n8n's own chat widget (@n8n/chat, POST /api/n8n-chat). The widget names its
-- session with a random UUID it invents; chatd keeps only sha256("n8n-chat:" || uuid) here, in
-- its own column, never as chat_sessions.id: a chatd widget's session id and an @n8n/chat
-- sessionId can never name the same session, by accident or on purpose. An expired or closed
-- session gives its key up to a new session (the old one keeps its history).
ALTER TABLE chat_sessions
    ADD COLUMN n8n_chat_key bytea;

CREATE UNIQUE INDEX idx_chat_sessions_n8n_chat_key ON chat_sessions (n8n_chat_key)
    WHERE n8n_chat_key IS NOT NULL;
