-- The guide's three tables with all their columns (timestamps with time zone), plus what the
-- guarantees need: per-session seq, token hash, verified user context, idempotency keys, and a
-- partial index for the dispatcher's claim query.

CREATE TABLE chat_sessions (
    id            text PRIMARY KEY,
    user_id       text,
    guest_email   text,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed', 'expired')),
    metadata      jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    token_hash    bytea NOT NULL,                 -- sha256 of the session token; the token is never stored
    last_seq      bigint NOT NULL DEFAULT 0,      -- seq of the newest message; bumped under the row lock
    user_context  jsonb NOT NULL DEFAULT '{}'     -- claims proven by userHash / identityToken
);
CREATE INDEX idx_chat_sessions_user_id ON chat_sessions (user_id);
CREATE INDEX idx_chat_sessions_status ON chat_sessions (status);
CREATE INDEX idx_chat_sessions_expires_at ON chat_sessions (expires_at);

CREATE TABLE chat_messages (
    id                 text PRIMARY KEY,
    session_id         text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    sender_type        text NOT NULL CHECK (sender_type IN ('user', 'bot', 'system')),
    content            text NOT NULL,
    message_type       text NOT NULL DEFAULT 'text'
                       CHECK (message_type IN ('text', 'quick_reply', 'rich_content')),
    metadata           jsonb,
    status             text NOT NULL DEFAULT 'delivered'
                       CHECK (status IN ('pending', 'sent', 'delivered', 'failed')),
    webhook_attempts   integer NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    seq                bigint NOT NULL,
    client_message_id  text,
    CONSTRAINT chat_messages_session_seq UNIQUE (session_id, seq),
    CONSTRAINT chat_messages_client_id UNIQUE (session_id, client_message_id)
);
CREATE INDEX idx_chat_messages_status ON chat_messages (status);
CREATE INDEX idx_chat_messages_created_at ON chat_messages (created_at);

CREATE TABLE chat_webhook_queue (
    id             text PRIMARY KEY,
    message_id     text NOT NULL UNIQUE REFERENCES chat_messages (id) ON DELETE CASCADE,
    webhook_url    text NOT NULL,
    payload        jsonb NOT NULL,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'dead')),
    attempts       integer NOT NULL DEFAULT 0,
    max_attempts   integer NOT NULL DEFAULT 3,
    next_retry_at  timestamptz NOT NULL DEFAULT now(),
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    session_id     text NOT NULL,                -- the FIFO lane
    seq            bigint NOT NULL               -- order within the lane
);
CREATE INDEX idx_chat_webhook_queue_status ON chat_webhook_queue (status);
CREATE INDEX idx_chat_webhook_queue_next_retry ON chat_webhook_queue (next_retry_at);
-- Only unfinished jobs: the claim query stays fast however many completed jobs pile up.
CREATE INDEX idx_chat_webhook_queue_open ON chat_webhook_queue (session_id, seq)
    WHERE status IN ('pending', 'processing');
CREATE INDEX idx_chat_webhook_queue_pending ON chat_webhook_queue (next_retry_at, id)
    WHERE status = 'pending';
