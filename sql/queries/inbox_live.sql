-- name: conversation_holder
-- Who holds a live conversation (NULL: nobody, or it is not live): whose typing the shopper sees.
SELECT agent_id FROM chat_sessions
 WHERE id = %(session_id)s AND conversation_state = 'human' AND status = 'active'
   AND expires_at > now()

-- name: agent_read_mark
-- The agent has seen the conversation up to `last_seq` (at most its last message; a mark never
-- goes back): how many of the shopper's messages are still unread after it (at most 100, as the
-- lists count them), and every process's inbox sockets of this agent told (its other devices).
WITH s AS (
    SELECT id, last_seq FROM chat_sessions WHERE id = %(session_id)s
), r AS (
    INSERT INTO chat_agent_reads AS r (agent_id, session_id, last_read_seq)
    SELECT %(agent_id)s, s.id, least(%(last_seq)s, s.last_seq) FROM s
        ON CONFLICT (agent_id, session_id) DO UPDATE
       SET last_read_seq = greatest(r.last_read_seq, excluded.last_read_seq), updated_at = now()
 RETURNING r.session_id, r.last_read_seq
)
SELECT r.session_id, r.last_read_seq,
       (SELECT count(*) FROM (SELECT 1 FROM chat_messages u
                               WHERE u.session_id = r.session_id AND u.seq > r.last_read_seq
                                 AND u.sender_type = 'user'
                               LIMIT 100) AS unread) AS unread,
       pg_notify('chatd_events', json_build_object(
           'type', 'conversation_read', 'agentId', %(agent_id)s::text,
           'sessionId', r.session_id, 'lastReadSeq', r.last_read_seq)::text) AS notified
  FROM r
