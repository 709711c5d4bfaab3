-- name: claim_jobs
-- Up to `limit` of the oldest due pending jobs that head their session's lane (per-session FIFO:
-- no earlier job of the session is pending or processing; a lane has one head, so one batch
-- never holds two jobs of a session). One statement claims for every idle worker of a process.
-- Walks only the partial index of pending jobs in order; a job queued behind its session's head
-- costs one index-only probe and is skipped. SKIP LOCKED lets dispatchers of every process claim
-- side by side. Expired leases are put back by `rescue_expired_leases`, so they need no branch
-- here (a branch would defeat the index).
WITH candidate AS (
    SELECT j.id
      FROM chat_webhook_queue j
     WHERE j.status = 'pending' AND j.next_retry_at <= now()
       AND j.seq = (SELECT min(e.seq) FROM chat_webhook_queue e
                     WHERE e.session_id = j.session_id
                       AND e.status IN ('pending', 'processing'))
     ORDER BY j.next_retry_at, j.id
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE chat_webhook_queue j
   SET status = 'processing', lease_id = gen_random_uuid(), locked_by = %(worker)s,
       owner_token = %(owner_token)s,
       locked_until = now() + make_interval(secs => %(lease_seconds)s),
       attempts = j.attempts + 1, updated_at = now()
  FROM candidate
 WHERE j.id = candidate.id
RETURNING j.id, j.message_id, j.session_id, j.seq, j.webhook_url, j.payload, j.attempts,
          j.max_attempts, j.lease_id, (j.attempts > 1) AS is_retry

-- name: rescue_expired_leases
-- A claim whose lease ran out (its process died or froze), or whose owner's advisory lock is
-- gone (its process died: chatd/db/owner.py), goes back to pending, due now; the lease is
-- cleared, so the late finisher's fenced updates change nothing. Walks only the partial index
-- of processing jobs; pg_locks is read once (a hashed subplan), this database's owner locks only.
-- Only a rescuer holding its own lock (`own_token` not NULL) judges owners, never itself: a
-- process whose LISTEN connection is reconnecting knows it is alive, and cannot tell much else.
WITH live AS (
    SELECT l.objid::bigint AS token
      FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %(namespace)s::bigint::oid
       AND l.objsubid = 2
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
), lost AS (
    SELECT j.id, j.locked_until < now() AS expired
      FROM chat_webhook_queue j
     WHERE j.status = 'processing'
       AND (j.locked_until < now()
            OR (%(own_token)s::integer IS NOT NULL AND j.owner_token <> %(own_token)s::integer
                AND j.owner_token NOT IN (SELECT token FROM live)))
     ORDER BY j.locked_until
     LIMIT 100
       FOR UPDATE OF j SKIP LOCKED
)
UPDATE chat_webhook_queue j
   SET status = 'pending', lease_id = NULL, locked_until = NULL, next_retry_at = now(),
       last_error = CASE WHEN lost.expired THEN 'lease expired: ' ELSE 'owner gone: ' END
                    || coalesce(j.locked_by, 'unknown worker'),
       owner_token = NULL, updated_at = now()
  FROM lost
 WHERE j.id = lost.id
RETURNING j.id, j.session_id, j.message_id, NOT lost.expired AS owner_gone

-- name: complete_job
-- Fenced on the lease. The user message becomes 'sent' (n8n took it; a reply may follow by
-- callback) unless a reply already marked it 'delivered'.
WITH job AS (
    UPDATE chat_webhook_queue
       SET status = 'completed', completed_at = now(), updated_at = now(), lease_id = NULL,
           locked_until = NULL, last_status = %(last_status)s, last_error = %(note)s
     WHERE id = %(job_id)s AND lease_id = %(lease_id)s AND status = 'processing'
 RETURNING message_id, attempts
)
UPDATE chat_messages m
   SET status = CASE WHEN m.status = 'delivered' THEN m.status ELSE 'sent' END,
       webhook_attempts = job.attempts, updated_at = now()
  FROM job
 WHERE m.id = job.message_id
RETURNING m.id, m.status

-- name: retry_job
WITH job AS (
    UPDATE chat_webhook_queue
       SET status = 'pending', lease_id = NULL, locked_until = NULL, updated_at = now(),
           next_retry_at = now() + make_interval(secs => %(delay_seconds)s),
           last_error = %(error)s, last_status = %(last_status)s
     WHERE id = %(job_id)s AND lease_id = %(lease_id)s AND status = 'processing'
 RETURNING message_id, attempts
)
UPDATE chat_messages m SET webhook_attempts = job.attempts, updated_at = now()
  FROM job
 WHERE m.id = job.message_id
RETURNING m.id

-- name: dead_event_job
-- An event (a conversation's rating, docs/n8n.md) out of attempts: dead, its message
-- failed, fenced on the lease. No fallback reply: the shopper asked nothing.
WITH job AS (
    UPDATE chat_webhook_queue
       SET status = 'dead', lease_id = NULL, locked_until = NULL, updated_at = now(),
           last_error = %(error)s, last_status = %(last_status)s
     WHERE id = %(job_id)s AND lease_id = %(lease_id)s AND status = 'processing'
 RETURNING message_id, attempts
)
UPDATE chat_messages m
   SET status = 'failed', webhook_attempts = job.attempts, updated_at = now()
  FROM job
 WHERE m.id = job.message_id
RETURNING m.id

-- name: release_job
-- Shutdown: give the job back untouched; this attempt does not count.
UPDATE chat_webhook_queue
   SET status = 'pending', lease_id = NULL, locked_until = NULL, locked_by = NULL,
       attempts = greatest(attempts - 1, 0), updated_at = now()
 WHERE id = %(job_id)s AND lease_id = %(lease_id)s AND status = 'processing'
RETURNING id

-- name: store_bot_message
-- A bot reply, in one transaction with what it settles: the job (when `job_id` is given, only if
-- we still hold its lease: a late finisher stores nothing), a new seq under the session row lock
-- (skipped if the same reply, by reply_key, is already stored), and the answered user message's
-- status (and how long after it the reply came). A racing identical reply can make this fail on the unique key: everything rolls back
-- (no seq used up) and the caller runs it again.
WITH job AS (
    UPDATE chat_webhook_queue
       SET status = %(job_status)s, lease_id = NULL, locked_until = NULL, updated_at = now(),
           completed_at = CASE WHEN %(job_status)s = 'completed' THEN now() END,
           last_status = %(last_status)s, last_error = %(job_error)s
     WHERE id = %(job_id)s AND lease_id = %(lease_id)s AND status = 'processing'
 RETURNING message_id, attempts
), s AS (
    -- Not while an agent holds the conversation: the reply is not shown (its job still settles).
    -- A reply asking for a person (`handoff`) moves a bot conversation to 'waiting'.
    UPDATE chat_sessions
       SET last_seq = last_seq + 1, updated_at = now(),
           conversation_state = CASE WHEN %(handoff)s AND conversation_state = 'bot'
                                     THEN 'waiting' ELSE conversation_state END,
           handoff_reason = CASE WHEN %(handoff)s AND conversation_state = 'bot'
                                 THEN %(handoff_reason)s ELSE handoff_reason END,
           state_changed_at = CASE WHEN %(handoff)s AND conversation_state = 'bot'
                                   THEN now() ELSE state_changed_at END
     WHERE id = %(session_id)s AND conversation_state <> 'human'
       AND (%(job_id)s::text IS NULL OR EXISTS (SELECT 1 FROM job))
       AND NOT EXISTS (SELECT 1 FROM chat_messages
                        WHERE session_id = %(session_id)s AND reply_key = %(reply_key)s)
 RETURNING id, last_seq
), m AS (
    INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, metadata,
                               status, seq, reply_to, reply_key)
    SELECT %(message_id)s, s.id, %(sender_type)s, %(content)s, %(message_type)s, %(metadata)s,
           'delivered', s.last_seq, %(reply_to)s, %(reply_key)s
      FROM s
 RETURNING id, session_id, sender_type, content, message_type, metadata, status, seq, created_at,
           reply_to
), answered AS (
    UPDATE chat_messages u
       SET status = %(reply_status)s, updated_at = now(),
           webhook_attempts = coalesce((SELECT attempts FROM job), u.webhook_attempts)
     WHERE u.id = %(reply_to)s AND u.session_id = %(session_id)s AND u.status <> 'delivered'
       AND (EXISTS (SELECT 1 FROM m) OR EXISTS (SELECT 1 FROM job))
), handoff AS (
    INSERT INTO chat_audit (session_id, action, detail)
    SELECT m.session_id, 'handoff_requested',
           jsonb_build_object('by', 'bot', 'reason', %(handoff_reason)s::text)
      FROM m WHERE %(handoff)s
)
SELECT m.*, (SELECT count(*) FROM job) AS settled,
       (SELECT conversation_state = 'human' FROM chat_sessions
         WHERE id = %(session_id)s) AS held_by_agent,
       (SELECT extract(epoch FROM now() - u.created_at)::float8 FROM chat_messages u
         WHERE u.id = %(reply_to)s AND EXISTS (SELECT 1 FROM m)) AS response_seconds
  FROM (SELECT 1) AS one LEFT JOIN m ON true

-- name: store_bot_messages
-- A streamed reply's messages (one per run, in the order the runs began; `ids` are those their
-- pieces streamed under), in one transaction with what they settle, like store_bot_message: the
-- job, fenced on its lease (a late finisher stores nothing), consecutive seqs under the session
-- row lock, skipping a message whose reply_key is stored already, and the answered user message
-- 'delivered'. A racing identical reply can make this fail on the unique key: everything rolls
-- back and the caller runs it again. One row per message stored (none: a lone summary row).
WITH job AS (
    UPDATE chat_webhook_queue
       SET status = 'completed', lease_id = NULL, locked_until = NULL, updated_at = now(),
           completed_at = now(), last_status = %(last_status)s, last_error = NULL
     WHERE id = %(job_id)s AND lease_id = %(lease_id)s AND status = 'processing'
 RETURNING message_id, attempts
), part AS (
    SELECT p.id, p.content, p.reply_key, p.n
      FROM unnest(%(ids)s::text[], %(contents)s::text[], %(reply_keys)s::text[])
           WITH ORDINALITY AS p(id, content, reply_key, n)
     WHERE EXISTS (SELECT 1 FROM job)
       AND NOT EXISTS (SELECT 1 FROM chat_messages e
                        WHERE e.session_id = %(session_id)s AND e.reply_key = p.reply_key)
       -- Not while an agent holds the conversation (the job still completes).
       AND NOT EXISTS (SELECT 1 FROM chat_sessions h
                        WHERE h.id = %(session_id)s AND h.conversation_state = 'human')
), s AS (
    UPDATE chat_sessions SET last_seq = last_seq + (SELECT count(*) FROM part), updated_at = now()
     WHERE id = %(session_id)s AND EXISTS (SELECT 1 FROM part)
 RETURNING id, last_seq
), m AS (
    INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, metadata,
                               status, seq, reply_to, reply_key)
    SELECT part.id, s.id, 'bot', part.content, 'text', '{}'::jsonb, 'delivered',
           s.last_seq - (SELECT count(*) FROM part) + row_number() OVER (ORDER BY part.n),
           %(reply_to)s, part.reply_key
      FROM part, s
     ORDER BY part.n
 RETURNING id, session_id, sender_type, content, message_type, metadata, status, seq, created_at,
           reply_to
), answered AS (
    UPDATE chat_messages u
       SET status = 'delivered', updated_at = now(), webhook_attempts = job.attempts
      FROM job
     WHERE u.id = %(reply_to)s AND u.session_id = %(session_id)s AND u.status <> 'delivered'
)
SELECT m.*, (SELECT count(*) FROM job) AS settled,
       (SELECT conversation_state = 'human' FROM chat_sessions
         WHERE id = %(session_id)s) AS held_by_agent,
       (SELECT extract(epoch FROM now() - u.created_at)::float8 FROM chat_messages u
         WHERE u.id = %(reply_to)s) AS response_seconds
  FROM (SELECT 1) AS one LEFT JOIN m ON true
 ORDER BY m.seq

-- name: extend_lease
-- A streamed reply outlasting a third of the lease keeps it: fenced, so a rescued job (someone
-- else's now) is not extended; no status change, so no event.
UPDATE chat_webhook_queue
   SET locked_until = now() + make_interval(secs => %(lease_seconds)s)
 WHERE id = %(job_id)s AND lease_id = %(lease_id)s AND status = 'processing'
RETURNING id

-- name: reply_by_key
SELECT id, session_id, sender_type, content, message_type, metadata, status, seq, created_at,
       reply_to
  FROM chat_messages
 WHERE session_id = %(session_id)s AND reply_key = %(reply_key)s

-- name: reply_target
-- The user message a callback answers, only within the callback's own session.
SELECT id FROM chat_messages
 WHERE id = %(reply_to)s AND session_id = %(session_id)s AND sender_type = 'user'

-- name: queue_stats
SELECT status, count(*) AS jobs,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_seconds
  FROM chat_webhook_queue
 GROUP BY status

-- name: retry_dead_job
-- Replay a dead letter: pending again with fresh attempts; its message is 'pending' again.
WITH job AS (
    UPDATE chat_webhook_queue
       SET status = 'pending', attempts = 0, next_retry_at = now(), updated_at = now(),
           last_error = NULL
     WHERE status = 'dead' AND (%(job_id)s::text IS NULL OR id = %(job_id)s)
 RETURNING message_id
)
UPDATE chat_messages m SET status = 'pending', updated_at = now()
  FROM job
 WHERE m.id = job.message_id
RETURNING m.id

-- name: purge_dead_jobs
DELETE FROM chat_webhook_queue
 WHERE status = 'dead' AND updated_at < now() - make_interval(secs => %(older_than_seconds)s)
RETURNING id

-- name: wake_dispatchers
SELECT pg_notify('chatd_jobs', '')
