-- Events follow state: triggers NOTIFY 'chatd_events' (ids only; the database stays the truth)
-- whenever a message is added or changes status, and when a session's job starts or stops
-- being worked on (the bot is typing while n8n has the message). Delivered at commit, to every
-- chatd process; a lost notification is repaired by the next resume from the database.

CREATE FUNCTION chatd_notify_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('chatd_events', json_build_object(
            'type', 'new_message', 'sessionId', NEW.session_id, 'messageId', NEW.id,
            'seq', NEW.seq)::text);
        IF NEW.sender_type <> 'user' THEN  -- a reply (or the fallback) ends the typing
            PERFORM pg_notify('chatd_events', json_build_object(
                'type', 'bot_typing', 'sessionId', NEW.session_id, 'isTyping', false)::text);
        END IF;
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM pg_notify('chatd_events', json_build_object(
            'type', 'message_status', 'sessionId', NEW.session_id, 'messageId', NEW.id,
            'seq', NEW.seq, 'status', NEW.status)::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER chat_messages_events AFTER INSERT OR UPDATE OF status ON chat_messages
    FOR EACH ROW EXECUTE FUNCTION chatd_notify_message();

CREATE FUNCTION chatd_notify_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Claimed: n8n is working on it. Back to pending (retry, release) or dead: it is not.
    -- Completed: the reply's insert clears it (now, or when the callback arrives).
    IF NEW.status = 'processing' AND OLD.status IS DISTINCT FROM 'processing' THEN
        PERFORM pg_notify('chatd_events', json_build_object(
            'type', 'bot_typing', 'sessionId', NEW.session_id, 'isTyping', true)::text);
    ELSIF OLD.status = 'processing' AND NEW.status IN ('pending', 'dead') THEN
        PERFORM pg_notify('chatd_events', json_build_object(
            'type', 'bot_typing', 'sessionId', NEW.session_id, 'isTyping', false)::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER chat_webhook_queue_events AFTER UPDATE OF status ON chat_webhook_queue
    FOR EACH ROW EXECUTE FUNCTION chatd_notify_job();
