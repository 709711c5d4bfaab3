-- name: send_user_message
-- One statement, one transaction: the session row lock orders concurrent sends, so commit order
-- is seq order; the message and its webhook job commit together. Zero rows: token, session or
-- expiry did not match, or the session's rate limit is reached (send_refusal tells which). A
-- reused client_message_id fails the unique constraint and rolls back everything (no seq is used
-- up, no send counted).
-- The rate limit, exact across processes: recent_sends holds the times of the session's newest
-- user messages, newest first, at most rate_max of them and none older than the window. A send
-- is allowed while fewer than rate_max are in the window. It is checked on the row as locked:
-- a send that waited for another one's lock rechecks against that one's recent_sends.
-- Only a conversation the bot answers queues a job: while a person is asked for ('waiting') or
-- holds it ('human') the message is stored for the staff (delivered) and n8n is not called.
-- Attachments (`attachment_ids`, in the message's order; empty for none): each must be a ready
-- upload of this session that no message has taken. Their rows are locked first, in id order,
-- so of two sends racing for one file the second finds it taken (message_id no longer NULL
-- once the first commits) and stores nothing; send_refusal says why.
WITH a AS MATERIALIZED (
    SELECT id, name, type, size, kind, width, height, sha256, thumb_type
      FROM chat_attachments
     WHERE id = ANY(%(attachment_ids)s::text[]) AND session_id = %(session_id)s
       AND state = 'ready' AND message_id IS NULL
     ORDER BY id
       FOR UPDATE
), files AS (
    SELECT CASE WHEN count(*) > 0 THEN
               jsonb_agg(jsonb_build_object('id', id, 'name', name, 'type', type, 'size', size,
                                            'kind', kind, 'width', width, 'height', height,
                                            'thumbnail', thumb_type IS NOT NULL)
                         ORDER BY array_position(%(attachment_ids)s::text[], id))
           END AS described,
           CASE WHEN count(*) > 0 THEN
               jsonb_agg(jsonb_build_object('id', id, 'name', name, 'type', type, 'size', size,
                                            'kind', kind, 'sha256', sha256)
                         ORDER BY array_position(%(attachment_ids)s::text[], id))
           END AS payload,
           count(*) AS found
      FROM a
), s AS (
    UPDATE chat_sessions
       SET last_seq = last_seq + 1,
           updated_at = now(),
           expires_at = greatest(expires_at, now() + make_interval(secs =>
               CASE WHEN user_id IS NULL THEN %(guest_ttl_seconds)s ELSE %(user_ttl_seconds)s END)),
           recent_sends = ARRAY(
               SELECT t FROM unnest(array_prepend(now(), recent_sends)) AS t
                WHERE t > now() - make_interval(secs => %(rate_window_seconds)s)
                ORDER BY t DESC
                LIMIT %(rate_max)s)
     WHERE id = %(session_id)s AND token_hash = %(token_hash)s
       AND status = 'active' AND expires_at > now()
       AND (cardinality(recent_sends) < %(rate_max)s
            OR recent_sends[%(rate_max)s]
               <= now() - make_interval(secs => %(rate_window_seconds)s))
       AND (SELECT found FROM files) = cardinality(%(attachment_ids)s::text[])
 RETURNING id, last_seq, user_id, guest_email, metadata, user_context, conversation_state
), m AS (
    INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, metadata,
                               status, seq, client_message_id, attachments)
    SELECT %(message_id)s, s.id, 'user', %(content)s, %(message_type)s, %(metadata)s,
           CASE WHEN s.conversation_state = 'bot' THEN 'pending' ELSE 'delivered' END,
           s.last_seq, %(client_message_id)s, files.described
      FROM s, files
 RETURNING id, session_id, sender_type, content, message_type, metadata, status, seq, created_at,
           client_message_id, attachments
), taken AS (
    UPDATE chat_attachments SET message_id = m.id FROM m WHERE chat_attachments.id IN (SELECT id FROM a)
), j AS (
    INSERT INTO chat_webhook_queue (id, message_id, session_id, seq, webhook_url, payload, max_attempts)
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
                                        'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                   -- each file's URL is signed at every delivery attempt (chatd/core/n8n_request.py)
                   || CASE WHEN files.payload IS NULL THEN '{}'::jsonb
                           ELSE jsonb_build_object('attachments', files.payload) END,
               'userContext', s.user_context
                   || jsonb_build_object('isAuthenticated', s.user_id IS NOT NULL),
               'sessionMetadata', coalesce(s.metadata, '{}'::jsonb)),
           %(max_attempts)s
      FROM m, s, files
     WHERE s.conversation_state = 'bot'
)
-- Wakes the dispatchers of every chatd process when the transaction commits.
SELECT m.* FROM m, LATERAL (SELECT pg_notify('chatd_jobs', '')) AS wake

-- name: send_refusal
-- Why send_user_message stored nothing: session_auth's answer, and the seconds until the
-- session's rate limit lets a message through (NULL: it is not what refused it).
SELECT id, token_hash, status, metadata, expires_at, last_seq,
       (status = 'active' AND expires_at > now()) AS live,
       CASE WHEN cardinality(recent_sends) >= %(rate_max)s
                 AND recent_sends[%(rate_max)s]
                     > now() - make_interval(secs => %(rate_window_seconds)s)
            THEN extract(epoch FROM recent_sends[%(rate_max)s]
                         + make_interval(secs => %(rate_window_seconds)s) - now())::float8
       END AS retry_after,
       -- The attachments asked for that are not this session's ready uploads, and those taken.
       ARRAY(SELECT wanted FROM unnest(%(attachment_ids)s::text[]) AS wanted
              WHERE NOT EXISTS (SELECT 1 FROM chat_attachments f
                                 WHERE f.id = wanted AND f.session_id = %(session_id)s
                                   AND f.state = 'ready')) AS attachments_missing,
       ARRAY(SELECT f.id FROM chat_attachments f
              WHERE f.id = ANY(%(attachment_ids)s::text[]) AND f.session_id = %(session_id)s
                AND f.message_id IS NOT NULL) AS attachments_taken
  FROM chat_sessions
 WHERE id = %(session_id)s

-- name: message_by_client_id
SELECT id, session_id, sender_type, content, message_type, metadata, status, seq, created_at,
       client_message_id, attachments
  FROM chat_messages
 WHERE session_id = %(session_id)s AND client_message_id = %(client_message_id)s

-- name: recent_messages
-- Page `offset / limit + 1` counted from the newest, returned oldest first.
SELECT * FROM (
    SELECT id, session_id, sender_type, content, message_type, metadata, status, seq, created_at,
           attachments, reply_to
      FROM chat_messages
     WHERE session_id = %(session_id)s
     ORDER BY seq DESC
     LIMIT %(limit)s OFFSET %(offset)s
) newest ORDER BY seq

-- name: messages_after_seq
SELECT id, session_id, sender_type, content, message_type, metadata, status, seq, created_at,
       attachments, reply_to
  FROM chat_messages
 WHERE session_id = %(session_id)s AND seq > %(after_seq)s
 ORDER BY seq
 LIMIT %(limit)s

-- name: messages_after_seqs
-- The re-read of many feeds at once (after lost notifications): up to `limit` messages after
-- each session's seq, in one round trip however many sessions have clients here.
SELECT m.id, m.session_id, m.sender_type, m.content, m.message_type, m.metadata, m.status, m.seq,
       m.created_at, m.attachments, m.reply_to
  FROM unnest(%(session_ids)s::text[], %(after_seqs)s::bigint[]) AS f(session_id, after_seq),
       LATERAL (SELECT * FROM chat_messages c
                 WHERE c.session_id = f.session_id AND c.seq > f.after_seq
                 ORDER BY c.seq
                 LIMIT %(limit)s) AS m
 ORDER BY m.session_id, m.seq

-- name: messages_by_ids
-- The messages a batch of new_message notifications names (the fan-out reads each once).
SELECT id, session_id, sender_type, content, message_type, metadata, status, seq, created_at,
       attachments, reply_to
  FROM chat_messages
 WHERE id = ANY(%(ids)s)

-- name: message_count
SELECT count(*) AS total FROM chat_messages WHERE session_id = %(session_id)s
