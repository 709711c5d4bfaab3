-- How conversations end and are rated (chatd/db/conversations.py). Each change is one
-- statement under the session's row lock: the row, and a system message with the next seq
-- (its metadata names the event), so every client sees the end and the rating in order.

-- name: close_session
-- A live session closed by the shopper (`token_hash` given: theirs) or by staff (NULL). Zero
-- rows: unknown, wrong token, or not live any more (conversation_state tells which). The
-- inbox sees it closed (nobody holds it any more), and its audit trail says by whom.
WITH s AS (
    UPDATE chat_sessions
       SET status = 'closed', closed_at = now(), closed_by = %(by)s,
           conversation_state = 'closed', agent_id = NULL, state_changed_at = now(),
           last_seq = last_seq + 1, updated_at = now()
     WHERE id = %(session_id)s AND status = 'active' AND expires_at > now()
       AND (%(token_hash)s::bytea IS NULL OR token_hash = %(token_hash)s::bytea)
 RETURNING id, last_seq
), audit AS (
    INSERT INTO chat_audit (session_id, action, detail)
    SELECT s.id, 'closed', jsonb_build_object('by', %(by)s::text) FROM s
)
INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, metadata,
                           status, seq)
SELECT %(message_id)s, s.id, 'system', %(content)s, 'text', %(metadata)s, 'delivered', s.last_seq
  FROM s
RETURNING id, session_id, sender_type, content, message_type, metadata, status, seq, created_at

-- name: conversation_state
-- A session whether live or not, with its rating if it has one.
SELECT s.id, s.token_hash, s.status, s.closed_by, s.expires_at, s.metadata, now() AS now,
       (s.status = 'active' AND s.expires_at > now()) AS live,
       r.rating, r.comment, r.created_at AS rated_at
  FROM chat_sessions s
  LEFT JOIN chat_ratings r ON r.session_id = s.id
 WHERE s.id = %(session_id)s

-- name: rate_session
-- The shopper's rating of an ended conversation, once: the rating, a system message naming it
-- and, when n8n is to hear of it (`notify`), its webhook job (the message waits 'pending' for
-- it, in the session's FIFO lane behind any message still to deliver), all in one statement.
-- Zero rows: unknown, wrong token, still live, or rated (conversation_state tells which); a
-- rating racing another fails on chat_ratings' key and rolls back whole.
WITH s AS (
    UPDATE chat_sessions
       SET last_seq = last_seq + 1, updated_at = now()
     WHERE id = %(session_id)s AND token_hash = %(token_hash)s
       AND (status <> 'active' OR expires_at <= now())
       AND NOT EXISTS (SELECT 1 FROM chat_ratings r WHERE r.session_id = %(session_id)s)
 RETURNING id, last_seq, user_id, guest_email, metadata, user_context
), r AS (
    INSERT INTO chat_ratings (session_id, rating, comment)
    SELECT s.id, %(rating)s, %(comment)s FROM s
 RETURNING rating, comment, created_at
), m AS (
    INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, metadata,
                               status, seq)
    SELECT %(message_id)s, s.id, 'system', %(content)s, 'text', %(metadata)s,
           CASE WHEN %(notify)s THEN 'pending' ELSE 'delivered' END, s.last_seq
      FROM s
 RETURNING id, session_id, sender_type, content, message_type, metadata, status, seq, created_at
), j AS (
    INSERT INTO chat_webhook_queue (id, message_id, session_id, seq, webhook_url, payload,
                                    max_attempts)
    SELECT %(job_id)s, m.id, m.session_id, m.seq, %(webhook_url)s,
           jsonb_build_object(
               'sessionId', s.id,
               'messageId', m.id,
               'seq', m.seq,
               'userId', s.user_id,
               'guestEmail', s.guest_email,
               'message', jsonb_build_object(
                   'content', m.content,
                   'type', m.message_type,
                   'timestamp', to_char(m.created_at AT TIME ZONE 'UTC',
                                        'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
               'event', jsonb_build_object(
                   'type', 'rating', 'rating', %(rating)s::integer, 'comment', %(comment)s::text),
               'userContext', s.user_context
                   || jsonb_build_object('isAuthenticated', s.user_id IS NOT NULL),
               'sessionMetadata', coalesce(s.metadata, '{}'::jsonb)),
           %(max_attempts)s
      FROM m, s
     WHERE %(notify)s
)
SELECT m.*, r.rating, r.comment, r.created_at AS rated_at
  FROM m, r
  LEFT JOIN LATERAL (SELECT pg_notify('chatd_jobs', '') WHERE %(notify)s) AS wake ON true

-- name: session_rating
SELECT rating, comment, created_at FROM chat_ratings WHERE session_id = %(session_id)s
