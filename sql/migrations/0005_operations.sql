-- Operations: alert cooldowns live in the database, so an alert fires once per cooldown across
-- the cluster whichever chatd is the leader (and across restarts); cleanup finds old sessions by
-- age and old completed jobs by completion time without scanning the tables.

CREATE TABLE chat_alerts (
    rule           text PRIMARY KEY,             -- e.g. 'high_webhook_failure_rate'
    last_fired_at  timestamptz NOT NULL,
    last_value     double precision,             -- what was measured when it last fired
    fired_count    bigint NOT NULL DEFAULT 1
);

CREATE INDEX idx_chat_sessions_created_at ON chat_sessions (created_at);
CREATE INDEX idx_chat_webhook_queue_completed ON chat_webhook_queue (completed_at)
    WHERE status = 'completed';
-- Deleting a message clears reply_to in the replies pointing at it: without this index, one scan
-- of chat_messages per deleted message (a 1000-session cleanup batch took 27 s at 200k messages).
CREATE INDEX idx_chat_messages_reply_to ON chat_messages (reply_to) WHERE reply_to IS NOT NULL;
-- The admin page lists sessions by last activity.
CREATE INDEX idx_chat_sessions_updated_at ON chat_sessions (updated_at);
