-- Conversation tags (chatd/db/tags.py). n8n's come in with its replies (the trigger in
-- sql/migrations/0009_insights.sql); these are staff's, through the admin API.

-- name: tag_add
-- Adds `tag` unless the conversation already holds max_tags of them (its row is locked while
-- this runs, so two additions cannot both take the last place). The data-modifying CTE's rows
-- are not visible to the rest of the statement: the list is read and the new tag added to it.
WITH s AS (
    SELECT id FROM chat_sessions WHERE id = %(session_id)s FOR UPDATE
), held AS (
    SELECT tag FROM chat_tags WHERE session_id = %(session_id)s
), added AS (
    INSERT INTO chat_tags (session_id, tag, source)
    SELECT s.id, %(tag)s, 'staff' FROM s
     WHERE (SELECT count(*) FROM held) < %(max_tags)s
    ON CONFLICT (session_id, tag) DO NOTHING
    RETURNING tag
)
SELECT EXISTS (SELECT 1 FROM s) AS found,
       EXISTS (SELECT 1 FROM held WHERE tag = %(tag)s) AS present,
       EXISTS (SELECT 1 FROM added) AS added,
       ARRAY(SELECT tag FROM held UNION SELECT tag FROM added ORDER BY 1) AS tags

-- name: tag_remove
WITH s AS (
    SELECT id FROM chat_sessions WHERE id = %(session_id)s
), gone AS (
    DELETE FROM chat_tags WHERE session_id = %(session_id)s AND tag = %(tag)s
    RETURNING tag
)
SELECT EXISTS (SELECT 1 FROM s) AS found,
       EXISTS (SELECT 1 FROM gone) AS removed,
       ARRAY(SELECT tag FROM chat_tags
              WHERE session_id = %(session_id)s AND tag <> %(tag)s ORDER BY tag) AS tags

-- name: tag_counts
-- Every tag with the number of conversations carrying it, most used first (an index-only walk
-- of (tag, session_id)).
SELECT tag, count(*) AS sessions
  FROM chat_tags
 GROUP BY tag
 ORDER BY sessions DESC, tag
 LIMIT %(limit)s
