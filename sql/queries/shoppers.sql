-- A shopper's data on request (chatd/db/shoppers.py): everything of theirs deleted in one
-- transaction, and an audit of it that keeps no content. Finding their sessions is
-- shopper_sessions (search.sql); exporting them is export_sessions (maintenance.sql).

-- name: shopper_sessions_lock
-- Their sessions, locked until the deletion commits: a message being sent waits, then finds no
-- session, so nothing of theirs is stored after the counts were taken.
SELECT id FROM chat_sessions
 WHERE (%(user_id)s::text IS NOT NULL AND user_id = %(user_id)s::text)
    OR (%(email)s::text IS NOT NULL AND lower(guest_email) = lower(%(email)s::text))
 ORDER BY id
   FOR UPDATE

-- name: shopper_disk_files
-- Their attachments stored on disk: the files go once the deletion has committed.
SELECT id FROM chat_attachments WHERE session_id = ANY(%(ids)s::text[]) AND storage = 'disk'

-- name: erase_sessions
SELECT chatd_erase_sessions(%(ids)s::text[]) AS deleted

-- name: erasure_record
INSERT INTO chat_erasures (id, requested_by, subject, subject_hash, deleted)
VALUES (%(id)s, %(requested_by)s, %(subject)s, chatd_subject_hash(%(subject)s, %(value)s),
        %(deleted)s)
RETURNING id, erased_at, requested_by, subject, subject_hash, deleted

-- name: erasures_list
-- The newest first; for one identifier (hashed the same way) when `value` is given.
SELECT id, erased_at, requested_by, subject, subject_hash, deleted
  FROM chat_erasures
 WHERE %(value)s::text IS NULL
    OR subject_hash = chatd_subject_hash(%(subject)s, %(value)s::text)
 ORDER BY erased_at DESC, id
 LIMIT %(limit)s

-- name: statement_timeout_set
-- For this connection until reset: a vacuum takes as long as the tables' indexes are big.
SELECT set_config('statement_timeout', %(value)s, false)

-- name: statement_timeout_reset
RESET statement_timeout

-- name: vacuum_erased
-- After a deletion: the deleted rows' bytes leave the tables, and their entries the indexes
-- (the search index's included), now rather than at autovacuum's next pass. INDEX_CLEANUP ON:
-- PostgreSQL would otherwise skip the indexes when few rows died. Every table the deletion
-- reaches is named here (a test checks it against the schema).
VACUUM (INDEX_CLEANUP ON) chat_sessions, chat_messages, chat_webhook_queue, chat_tags, chat_ratings,
       chat_attachments, chat_attachment_chunks, chat_audit, chat_notes, chat_handoffs,
       chat_agent_reads

-- name: shopper_counts
-- What a deletion would take, for its confirmation: their sessions and messages.
WITH s AS (
    SELECT id FROM chat_sessions
     WHERE (%(user_id)s::text IS NOT NULL AND user_id = %(user_id)s::text)
        OR (%(email)s::text IS NOT NULL AND lower(guest_email) = lower(%(email)s::text))
)
SELECT (SELECT count(*) FROM s) AS sessions,
       (SELECT count(*) FROM chat_messages m WHERE m.session_id IN (SELECT id FROM s)) AS messages
