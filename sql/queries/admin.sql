-- The admin API's reads (chatd/db/admin.py). Each is bounded by a LIMIT or a time window and
-- walks an index; the page polls the overview every 2 seconds from every open admin tab.

-- name: admin_queue_counts
-- Open jobs and dead letters by status, each on its own (partial) index. Completed jobs only
-- within the last hour (the completed_at index): all of them would be a scan of the table's
-- bulk on every poll. Plus the live sessions (active and not expired).
SELECT (SELECT count(*) FROM chat_webhook_queue WHERE status = 'pending') AS pending,
       (SELECT count(*) FROM chat_webhook_queue WHERE status = 'processing') AS processing,
       (SELECT count(*) FROM chat_webhook_queue
         WHERE status = 'completed' AND completed_at > now() - interval '1 hour')
           AS completed_last_hour,
       (SELECT count(*) FROM chat_webhook_queue WHERE status = 'dead') AS dead,
       (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
          FROM chat_webhook_queue WHERE status = 'pending') AS oldest_pending_seconds,
       (SELECT count(*) FROM chat_sessions
         WHERE status = 'active' AND expires_at > now()) AS live_sessions

-- name: admin_throughput
-- Per bucket of `bucket_seconds` (aligned to the epoch, the newest one still filling), over the
-- last `buckets` of them: user messages received and jobs completed, cluster-wide. Buckets
-- with nothing are zeros. Reads the created_at and completed_at indexes within the window only.
WITH bounds AS (
    SELECT floor(extract(epoch FROM now()) / %(bucket_seconds)s) * %(bucket_seconds)s
           - (%(buckets)s - 1) * %(bucket_seconds)s AS first_start
), received AS (
    SELECT floor((extract(epoch FROM m.created_at) - b.first_start) / %(bucket_seconds)s)::int
           AS i, count(*) AS n
      FROM chat_messages m, bounds b
     WHERE m.created_at >= to_timestamp(b.first_start) AND m.sender_type = 'user'
     GROUP BY 1
), completed AS (
    SELECT floor((extract(epoch FROM j.completed_at) - b.first_start) / %(bucket_seconds)s)::int
           AS i, count(*) AS n
      FROM chat_webhook_queue j, bounds b
     WHERE j.status = 'completed' AND j.completed_at >= to_timestamp(b.first_start)
     GROUP BY 1
)
SELECT to_timestamp(b.first_start + g.i * %(bucket_seconds)s) AS start,
       coalesce(r.n, 0) AS received, coalesce(c.n, 0) AS completed
  FROM bounds b
 CROSS JOIN generate_series(0, %(buckets)s - 1) AS g(i)
  LEFT JOIN received r ON r.i = g.i
  LEFT JOIN completed c ON c.i = g.i
 ORDER BY g.i

-- name: admin_webhook_window
-- Webhook outcomes cluster-wide over the last `window_seconds`, from the jobs' state (the
-- table keeps no row per attempt): completed in the window; failed and waiting to retry
-- (pending with an error, set by a failed attempt or a lost lease); dead-lettered in the window.
SELECT (SELECT count(*) FROM chat_webhook_queue
         WHERE status = 'completed'
           AND completed_at > now() - make_interval(secs => %(window_seconds)s)) AS completed,
       (SELECT count(*) FROM chat_webhook_queue
         WHERE status = 'pending' AND last_error IS NOT NULL
           AND updated_at > now() - make_interval(secs => %(window_seconds)s)) AS retrying,
       (SELECT count(*) FROM chat_webhook_queue
         WHERE status = 'dead'
           AND updated_at > now() - make_interval(secs => %(window_seconds)s)) AS dead

-- name: admin_recent_errors
-- The newest jobs with an error, from three bounded index walks: dead letters (newest first),
-- open jobs (pending and processing: as many as the queue is deep), and jobs completed within
-- the last hour with a note (n8n took the message but its reply was unusable).
SELECT e.id, e.session_id, e.message_id, e.status, e.last_error, e.last_status, e.at,
       left(m.content, 200) AS content
  FROM (
        (SELECT id, session_id, message_id, status, last_error, last_status, updated_at AS at
           FROM chat_webhook_queue
          WHERE status = 'dead' AND last_error IS NOT NULL
          ORDER BY updated_at DESC
          LIMIT %(limit)s)
        UNION ALL
        (SELECT id, session_id, message_id, status, last_error, last_status, updated_at
           FROM chat_webhook_queue
          WHERE status IN ('pending', 'processing') AND last_error IS NOT NULL
          ORDER BY updated_at DESC
          LIMIT %(limit)s)
        UNION ALL
        (SELECT id, session_id, message_id, status, last_error, last_status, completed_at
           FROM chat_webhook_queue
          WHERE status = 'completed' AND completed_at > now() - interval '1 hour'
            AND last_error IS NOT NULL
          ORDER BY completed_at DESC
          LIMIT %(limit)s)
       ) AS e
  JOIN chat_messages m ON m.id = e.message_id
 ORDER BY e.at DESC, e.id
 LIMIT %(limit)s

-- name: admin_dead_letters
-- Newest first (the dead-letter index backwards), with the message that could not be delivered.
SELECT j.id, j.session_id, j.message_id, j.attempts, j.max_attempts, j.last_status,
       j.last_error, j.created_at, j.updated_at, m.content
  FROM chat_webhook_queue j JOIN chat_messages m ON m.id = j.message_id
 WHERE j.status = 'dead'
 ORDER BY j.updated_at DESC, j.id
 LIMIT %(limit)s

-- name: admin_purge_dead_job
-- One dead letter deleted; its message stays, marked failed.
DELETE FROM chat_webhook_queue
 WHERE id = %(job_id)s AND status = 'dead'
RETURNING id

-- name: admin_sessions
-- Most recently active first (updated_at moves with every message), optionally only the live
-- ones, optionally those whose id, user id or guest email starts with `q` (the email ignoring
-- case), optionally those tagged `tag`. Each with its message count, newest message, tags and
-- whether it is live.
SELECT s.id, s.user_id, s.guest_email, s.status, s.metadata, s.created_at, s.updated_at,
       s.expires_at, s.last_seq, (s.status = 'active' AND s.expires_at > now()) AS live,
       (SELECT count(*) FROM chat_messages c WHERE c.session_id = s.id) AS message_count,
       last.sender_type AS last_sender, left(last.content, 140) AS last_content,
       last.created_at AS last_at,
       ARRAY(SELECT t.tag FROM chat_tags t WHERE t.session_id = s.id ORDER BY t.tag) AS tags
  FROM chat_sessions s
  LEFT JOIN LATERAL (SELECT sender_type, content, created_at FROM chat_messages c
                      WHERE c.session_id = s.id
                      ORDER BY c.seq DESC
                      LIMIT 1) AS last ON true
 WHERE (NOT %(live_only)s OR (s.status = 'active' AND s.expires_at > now()))
   AND (%(q)s::text IS NULL
        OR starts_with(s.id, %(q)s)
        OR starts_with(s.user_id, %(q)s)
        OR starts_with(lower(s.guest_email), lower(%(q)s)))
   AND (%(tag)s::text IS NULL
        OR EXISTS (SELECT 1 FROM chat_tags t WHERE t.session_id = s.id AND t.tag = %(tag)s::text))
 ORDER BY s.updated_at DESC, s.id
 LIMIT %(limit)s

-- name: admin_session
SELECT s.id, s.user_id, s.guest_email, s.status, s.metadata, s.created_at, s.updated_at,
       s.expires_at, s.last_seq,
       ARRAY(SELECT t.tag FROM chat_tags t WHERE t.session_id = s.id ORDER BY t.tag) AS tags
  FROM chat_sessions s
 WHERE s.id = %(session_id)s

-- name: admin_transcript_messages
-- A whole conversation, oldest first, up to `limit` messages (the unique (session_id, seq) index).
SELECT id, session_id, sender_type, content, message_type, metadata, status, seq, created_at,
       attachments
  FROM chat_messages
 WHERE session_id = %(session_id)s
 ORDER BY seq
 LIMIT %(limit)s

-- name: admin_broadcast
-- An announcement: one system message in every live session whose metadata contains `filter`
-- (all live sessions when it is null), each with the session's next seq, in one statement. The
-- triggers notify every chatd process, which pushes it to the clients connected there.
WITH s AS (
    UPDATE chat_sessions SET last_seq = last_seq + 1, updated_at = now()
     WHERE status = 'active' AND expires_at > now()
       AND (%(filter)s::jsonb IS NULL OR metadata @> %(filter)s::jsonb)
 RETURNING id, last_seq
), m AS (
    INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, metadata,
                               status, seq)
    SELECT gen_random_uuid()::text, s.id, 'system', %(content)s, 'text',
           '{"broadcast": true}'::jsonb, 'delivered', s.last_seq
      FROM s
 RETURNING 1
)
SELECT count(*) AS sessions FROM m
