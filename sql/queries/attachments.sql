-- Attachments (chatd/db/attachments.py) and their bytes in PostgreSQL (chatd/db/blobs.py).

-- name: file_url_key
-- The key that signs file URLs, made by the first chatd that asks. Zero rows when another
-- process inserted it after this statement's snapshot was taken: ask again.
WITH made AS (
    INSERT INTO chat_secrets (name, value) VALUES ('file_urls', %(candidate)s)
    ON CONFLICT (name) DO NOTHING
    RETURNING value
)
SELECT value FROM made
UNION ALL
SELECT value FROM chat_secrets WHERE name = 'file_urls'
LIMIT 1

-- name: upload_usage
-- Before an upload: the bytes the session stored in the last `window_seconds`, the seconds
-- until the oldest of them leaves the window, and (when a total limit is set) everything stored.
SELECT coalesce(sum(size), 0)::bigint AS session_bytes,
       extract(epoch FROM min(created_at) + make_interval(secs => %(window_seconds)s) - now())::float8
           AS window_frees_in,
       CASE WHEN %(with_total)s
            THEN (SELECT coalesce(sum(size + thumb_size), 0) FROM chat_attachments)::bigint
       END AS total_bytes
  FROM chat_attachments
 WHERE session_id = %(session_id)s AND state = 'ready'
   AND created_at > now() - make_interval(secs => %(window_seconds)s)

-- name: start_upload
INSERT INTO chat_attachments (id, session_id, storage, chunk_bytes)
VALUES (%(id)s, %(session_id)s, %(storage)s, %(chunk_bytes)s)

-- name: lock_session_for_upload
-- The finish's first statement: uploads of one session finish one at a time, so the quota the
-- second statement checks counts the other's bytes.
SELECT id FROM chat_sessions WHERE id = %(session_id)s FOR UPDATE

-- name: finish_upload
-- The file is stored and checked: ready, unless it takes the session past its daily bytes.
-- Zero rows: refused (upload_usage says why), or the row is gone (its session was deleted).
UPDATE chat_attachments a
   SET state = 'ready', name = %(name)s, type = %(type)s, kind = %(kind)s, size = %(size)s,
       sha256 = %(sha256)s, width = %(width)s, height = %(height)s,
       thumb_type = %(thumb_type)s, thumb_size = %(thumb_size)s
 WHERE a.id = %(id)s AND a.state = 'uploading'
   AND %(size)s + (SELECT coalesce(sum(o.size), 0) FROM chat_attachments o
                    WHERE o.session_id = a.session_id AND o.state = 'ready'
                      AND o.created_at > now() - make_interval(secs => %(window_seconds)s))
       <= %(session_limit)s
RETURNING a.id, a.created_at

-- name: delete_attachment
DELETE FROM chat_attachments WHERE id = %(id)s

-- name: delete_unsent_attachments
-- Files a form stored for a message that was then refused: only those no message has taken
-- (one that did commit keeps its files); the ids deleted, so their bytes go too.
DELETE FROM chat_attachments WHERE id = ANY(%(ids)s) AND message_id IS NULL
RETURNING id

-- name: attachment_for_download
SELECT id, storage, chunk_bytes, name, type, kind, size, sha256, thumb_type, thumb_size
  FROM chat_attachments
 WHERE id = %(id)s AND state = 'ready'

-- name: existing_attachments
-- Which of these ids still have a row (the disk store's orphan sweep).
SELECT id FROM chat_attachments WHERE id = ANY(%(ids)s)

-- name: stale_uploads
-- Uploads that never finished (their chatd was killed mid-upload), locked for deletion.
SELECT id, storage
  FROM chat_attachments
 WHERE state = 'uploading' AND created_at < now() - make_interval(secs => %(older_than_seconds)s)
 ORDER BY created_at
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED

-- name: delete_attachments
DELETE FROM chat_attachments WHERE id = ANY(%(ids)s)

-- name: count_stale_uploads
SELECT count(*) AS attachments
  FROM chat_attachments
 WHERE state = 'uploading' AND created_at < now() - make_interval(secs => %(older_than_seconds)s)

-- name: blob_write_chunk
INSERT INTO chat_attachment_chunks (attachment_id, variant, n, data)
VALUES (%(id)s, %(variant)s, %(n)s, %(data)b)

-- name: blob_read_chunks
SELECT n, data
  FROM chat_attachment_chunks
 WHERE attachment_id = %(id)s AND variant = %(variant)s AND n BETWEEN %(first)s AND %(last)s
 ORDER BY n

-- name: blob_delete_variant
DELETE FROM chat_attachment_chunks WHERE attachment_id = %(id)s AND variant = %(variant)s

-- name: blob_delete
DELETE FROM chat_attachment_chunks WHERE attachment_id = ANY(%(ids)s)
