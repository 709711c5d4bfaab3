-- Delivery to n8n: leases fence every change of a claimed job (a late finisher updates 0 rows),
-- and bot replies carry an idempotency key so a repeated callback is stored once.

ALTER TABLE chat_webhook_queue
    ADD COLUMN lease_id      uuid,          -- set by each claim; every later change must match it
    ADD COLUMN locked_until  timestamptz,   -- past this, the claim is abandoned and rescued
    ADD COLUMN locked_by     text,          -- which process holds the lease (for operators)
    ADD COLUMN last_status   integer,       -- n8n's last HTTP status, if any
    ADD COLUMN completed_at  timestamptz;
CREATE INDEX idx_chat_webhook_queue_leases ON chat_webhook_queue (locked_until)
    WHERE status = 'processing';
CREATE INDEX idx_chat_webhook_queue_dead ON chat_webhook_queue (updated_at) WHERE status = 'dead';

ALTER TABLE chat_messages
    ADD COLUMN reply_to   text REFERENCES chat_messages (id) ON DELETE SET NULL,
    ADD COLUMN reply_key  text,              -- sha256 of (reply_to, reply): the same reply is one row
    ADD CONSTRAINT chat_messages_reply_key UNIQUE (session_id, reply_key);
