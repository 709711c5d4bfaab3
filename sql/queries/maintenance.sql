-- Cleanup (chatd/db/cleanup.py) and export (chatd/db/export.py).
--
-- Cleanup works in batches: each touches at most `limit` rows in one short transaction, oldest
-- first, skipping rows someone else holds locked. A session with a job still to deliver (pending
-- or processing) is never deleted: the API acknowledged that message. Every count_* query repeats
-- the predicate of the lock_*/delete_* query it counts for (--dry-run): change them together.
-- `id = ANY(ARRAY(subquery))` rather than `id IN (subquery)`: the batch's ids are found first and
-- then deleted by primary key (an IN may become a semi-join over the whole table, every batch).

-- name: lock_expired_sessions
-- Expired sessions with nothing left to deliver, locked until this batch's transaction ends.
-- Every session query here keeps a session whose last activity (updated_at moves with every
-- message and rating) is not rolled up into the analytics yet (`rolled_until`).
SELECT s.id
  FROM chat_sessions s
 WHERE s.expires_at < now() AND s.updated_at < %(rolled_until)s
   AND NOT EXISTS (SELECT 1 FROM chat_webhook_queue j
                    WHERE j.session_id = s.id AND j.status IN ('pending', 'processing'))
 ORDER BY s.expires_at
 LIMIT %(limit)s
   FOR UPDATE OF s SKIP LOCKED

-- name: lock_old_sessions
-- Sessions past retention that have not expired (the expired ones are lock_expired_sessions').
SELECT s.id
  FROM chat_sessions s
 WHERE s.created_at < now() - make_interval(secs => %(older_than_seconds)s)
   AND (s.expires_at IS NULL OR s.expires_at >= now()) AND s.updated_at < %(rolled_until)s
   AND NOT EXISTS (SELECT 1 FROM chat_webhook_queue j
                    WHERE j.session_id = s.id AND j.status IN ('pending', 'processing'))
 ORDER BY s.created_at
 LIMIT %(limit)s
   FOR UPDATE OF s SKIP LOCKED

-- name: delete_sessions
-- The batch's second statement. Its snapshot is taken while we hold the session row locks, so a
-- message sent after the lock_* query looked (a send locks the session row first) is seen here
-- and its session kept; a send arriving now waits for our commit, then finds no session. The
-- counts read the snapshot from before this statement, where the cascaded rows still exist.
-- Each cascaded message also clears the reply_to of replies pointing at it (ON DELETE SET NULL):
-- without an index on chat_messages (reply_to), that is one scan of the table per message.
WITH gone AS (
    DELETE FROM chat_sessions s
     WHERE s.id = ANY(%(ids)s)
       AND NOT EXISTS (SELECT 1 FROM chat_webhook_queue j
                        WHERE j.session_id = s.id AND j.status IN ('pending', 'processing'))
 RETURNING s.id
)
SELECT (SELECT count(*) FROM gone) AS sessions,
       (SELECT count(*) FROM chat_messages m WHERE m.session_id IN (SELECT id FROM gone))
           AS messages,
       (SELECT count(*) FROM chat_messages m JOIN chat_webhook_queue j ON j.message_id = m.id
         WHERE m.session_id IN (SELECT id FROM gone)) AS jobs,
       (SELECT count(*) FROM chat_attachments a WHERE a.session_id IN (SELECT id FROM gone))
           AS attachments,
       -- Files on disk: deleted by chatd once this transaction commits (chatd/db/cleanup.py).
       ARRAY(SELECT a.id FROM chat_attachments a
              WHERE a.session_id IN (SELECT id FROM gone) AND a.storage = 'disk') AS disk_files

-- name: delete_completed_jobs
-- Delivered long ago; their messages stay. completed_at is set by every completion; the
-- updated_at fallback covers rows completed before it existed.
WITH gone AS (
    DELETE FROM chat_webhook_queue
     WHERE id = ANY(ARRAY(
               SELECT id FROM chat_webhook_queue
                WHERE status = 'completed'
                  AND (completed_at < now() - make_interval(secs => %(older_than_seconds)s)
                       OR (completed_at IS NULL
                           AND updated_at < now() - make_interval(secs => %(older_than_seconds)s)))
                ORDER BY completed_at
                LIMIT %(limit)s
                  FOR UPDATE SKIP LOCKED))
 RETURNING id
)
SELECT count(*) AS jobs FROM gone

-- name: delete_dead_jobs
-- Dead letters nobody replayed; their messages stay, marked failed (the dispatcher did that when
-- the job died; a message still pending would otherwise wait forever).
WITH gone AS (
    DELETE FROM chat_webhook_queue
     WHERE id = ANY(ARRAY(
               SELECT id FROM chat_webhook_queue
                WHERE status = 'dead'
                  AND updated_at < now() - make_interval(secs => %(older_than_seconds)s)
                ORDER BY updated_at
                LIMIT %(limit)s
                  FOR UPDATE SKIP LOCKED))
 RETURNING message_id
), failed AS (
    UPDATE chat_messages m SET status = 'failed', updated_at = now()
     WHERE m.id = ANY(ARRAY(SELECT message_id FROM gone)) AND m.status = 'pending'
)
SELECT count(*) AS jobs FROM gone

-- name: count_expired_sessions
WITH doomed AS (
    SELECT s.id
      FROM chat_sessions s
     WHERE s.expires_at < now() AND s.updated_at < %(rolled_until)s
       AND NOT EXISTS (SELECT 1 FROM chat_webhook_queue j
                        WHERE j.session_id = s.id AND j.status IN ('pending', 'processing'))
)
SELECT (SELECT count(*) FROM doomed) AS sessions,
       (SELECT count(*) FROM chat_messages m WHERE m.session_id IN (SELECT id FROM doomed))
           AS messages,
       (SELECT count(*) FROM chat_messages m JOIN chat_webhook_queue j ON j.message_id = m.id
         WHERE m.session_id IN (SELECT id FROM doomed)) AS jobs,
       (SELECT count(*) FROM chat_attachments a WHERE a.session_id IN (SELECT id FROM doomed))
           AS attachments

-- name: count_old_sessions
WITH doomed AS (
    SELECT s.id
      FROM chat_sessions s
     WHERE s.created_at < now() - make_interval(secs => %(older_than_seconds)s)
       AND (s.expires_at IS NULL OR s.expires_at >= now()) AND s.updated_at < %(rolled_until)s
       AND NOT EXISTS (SELECT 1 FROM chat_webhook_queue j
                        WHERE j.session_id = s.id AND j.status IN ('pending', 'processing'))
)
SELECT (SELECT count(*) FROM doomed) AS sessions,
       (SELECT count(*) FROM chat_messages m WHERE m.session_id IN (SELECT id FROM doomed))
           AS messages,
       (SELECT count(*) FROM chat_messages m JOIN chat_webhook_queue j ON j.message_id = m.id
         WHERE m.session_id IN (SELECT id FROM doomed)) AS jobs,
       (SELECT count(*) FROM chat_attachments a WHERE a.session_id IN (SELECT id FROM doomed))
           AS attachments

-- name: count_completed_jobs
-- Without the jobs whose session goes first (counted there): the real run deletes sessions first.
SELECT count(*) AS jobs
  FROM chat_webhook_queue j
 WHERE j.status = 'completed'
   AND (j.completed_at < now() - make_interval(secs => %(older_than_seconds)s)
        OR (j.completed_at IS NULL
            AND j.updated_at < now() - make_interval(secs => %(older_than_seconds)s)))
   AND NOT EXISTS (SELECT 1 FROM chat_sessions s
                    WHERE s.id = j.session_id AND s.updated_at < %(rolled_until)s
                      AND (s.expires_at < now()
                           OR s.created_at < now() - make_interval(secs => %(session_older_than_seconds)s))
                      AND NOT EXISTS (SELECT 1 FROM chat_webhook_queue o
                                       WHERE o.session_id = s.id
                                         AND o.status IN ('pending', 'processing')))

-- name: count_dead_jobs
-- Without the jobs whose session goes first, as count_completed_jobs.
SELECT count(*) AS jobs
  FROM chat_webhook_queue j
 WHERE j.status = 'dead' AND j.updated_at < now() - make_interval(secs => %(older_than_seconds)s)
   AND NOT EXISTS (SELECT 1 FROM chat_sessions s
                    WHERE s.id = j.session_id AND s.updated_at < %(rolled_until)s
                      AND (s.expires_at < now()
                           OR s.created_at < now() - make_interval(secs => %(session_older_than_seconds)s))
                      AND NOT EXISTS (SELECT 1 FROM chat_webhook_queue o
                                       WHERE o.session_id = s.id
                                         AND o.status IN ('pending', 'processing')))

-- name: count_undelivered_sessions
-- Sessions expired or past retention that cleanup keeps because a job is still to be delivered.
SELECT count(*) AS sessions
  FROM chat_sessions s
 WHERE (s.expires_at < now() OR s.created_at < now() - make_interval(secs => %(older_than_seconds)s))
   AND EXISTS (SELECT 1 FROM chat_webhook_queue j
                WHERE j.session_id = s.id AND j.status IN ('pending', 'processing'))

-- name: export_sessions
-- One page of sessions whose lifetime (created_at to updated_at) overlaps [since, until), in
-- (created_at, id) order after the last page's last row. The plain created_at bound lets the
-- index do the work; the row comparison breaks ties between equal timestamps. Optional filters
-- (NULL: not applied; run unprepared, so they fold away): named sessions, one shopper (user id,
-- or guest email ignoring case), a tag, a rating (rated: has one, or not; rating: that value),
-- a full-text query matching one of their messages, handed to a person or never (the audit,
-- as search_page), in a state now, an agent's (named by the audit, as search_page).
SELECT s.id, s.user_id, s.guest_email, s.status, s.metadata, s.created_at, s.updated_at,
       s.expires_at, s.last_seq,
       ARRAY(SELECT t.tag FROM chat_tags t WHERE t.session_id = s.id ORDER BY t.tag) AS tags
  FROM chat_sessions s
 WHERE s.created_at < %(until)s AND s.updated_at >= %(since)s
   AND (%(session_ids)s::text[] IS NULL OR s.id = ANY(%(session_ids)s::text[]))
   AND (%(user_id)s::text IS NULL OR s.user_id = %(user_id)s::text)
   AND (%(email)s::text IS NULL OR lower(s.guest_email) = lower(%(email)s::text))
   AND (%(tag)s::text IS NULL
        OR EXISTS (SELECT 1 FROM chat_tags t WHERE t.session_id = s.id AND t.tag = %(tag)s::text))
   AND (%(rated)s::boolean IS NULL
        OR EXISTS (SELECT 1 FROM chat_ratings r
                    WHERE r.session_id = s.id
                      AND (%(rating)s::smallint IS NULL OR r.rating = %(rating)s::smallint))
           = %(rated)s::boolean)
   AND (%(q)s::text IS NULL
        OR EXISTS (SELECT 1 FROM chat_messages m
                    WHERE m.session_id = s.id
                      AND m.search @@ websearch_to_tsquery(%(config)s::regconfig, %(q)s::text)))
   AND (%(handed_off)s::boolean IS NULL
        OR EXISTS (SELECT 1 FROM chat_audit a
                    WHERE a.session_id = s.id AND a.action IN ('handoff_requested', 'taken'))
           = %(handed_off)s::boolean)
   AND (%(state)s::text IS NULL OR s.conversation_state = %(state)s::text)
   AND (%(agent_id)s::text IS NULL
        OR EXISTS (SELECT 1 FROM chat_audit a
                    WHERE a.session_id = s.id
                      AND (a.agent_id = %(agent_id)s::text
                           OR a.detail ->> 'to' = %(agent_id)s::text)))
   AND s.created_at >= %(after_created_at)s
   AND (s.created_at, s.id) > (%(after_created_at)s, %(after_id)s)
 ORDER BY s.created_at, s.id
 LIMIT %(limit)s

-- name: export_messages
SELECT id, session_id, sender_type, content, message_type, metadata, status, seq, created_at
  FROM chat_messages
 WHERE session_id = ANY(%(session_ids)s)
 ORDER BY session_id, seq
