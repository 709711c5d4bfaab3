-- A reply's new_message already tells every client the bot stopped typing (chatd/PROTOCOL.md):
-- the bot_typing false that followed each reply is dropped, one notification fewer per reply
-- (half of a broadcast's). Otherwise as 0003_events.sql.

CREATE OR REPLACE FUNCTION chatd_notify_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('chatd_events', json_build_object(
            'type', 'new_message', 'sessionId', NEW.session_id, 'messageId', NEW.id,
            'seq', NEW.seq)::text);
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM pg_notify('chatd_events', json_build_object(
            'type', 'message_status', 'sessionId', NEW.session_id, 'messageId', NEW.id,
            'seq', NEW.seq, 'status', NEW.status)::text);
    END IF;
    RETURN NULL;
END $$;
