-- The inbox's tools (chatd/db/notes.py): internal notes, canned responses, and the audit trail
-- as transcripts and exports show it.

-- name: note_add
-- An internal note in a conversation still open (live, not closed). Zero rows: unknown, ended
-- or expired (conversation_now tells which). Its trigger tells every process's inbox feed.
INSERT INTO chat_notes (id, session_id, agent_id, agent_name, content)
SELECT %(id)s, s.id, %(agent_id)s, %(agent_name)s, %(content)s
  FROM chat_sessions s
 WHERE s.id = %(session_id)s AND s.status = 'active' AND s.expires_at > now()
   AND s.conversation_state <> 'closed'
RETURNING id, session_id, agent_id, agent_name, content, created_at

-- name: notes_by_ids
-- The notes a batch of notifications names (read once per batch, as messages_by_ids).
SELECT id, session_id, agent_id, agent_name, content, created_at
  FROM chat_notes
 WHERE id = ANY(%(ids)s::text[])
 ORDER BY created_at, id

-- name: session_notes
-- A conversation's notes, oldest first (idx_chat_notes_session), up to `limit`.
SELECT id, session_id, agent_id, agent_name, content, created_at
  FROM chat_notes
 WHERE session_id = %(session_id)s
 ORDER BY created_at, id
 LIMIT %(limit)s

-- name: audit_of_sessions
-- The audit trails of a page of exported sessions, each oldest first (idx_chat_audit_session).
SELECT a.session_id, a.action, a.agent_id, g.name AS agent_name, a.detail, a.created_at
  FROM chat_audit a LEFT JOIN chat_agents g ON g.id = a.agent_id
 WHERE a.session_id = ANY(%(session_ids)s::text[])
 ORDER BY a.session_id, a.id

-- name: agent_files_refusal
-- Why agent_message stored nothing when it was given files: those that are not this session's
-- ready uploads, and those another message has taken (as send_refusal).
SELECT ARRAY(SELECT wanted FROM unnest(%(attachment_ids)s::text[]) AS wanted
              WHERE NOT EXISTS (SELECT 1 FROM chat_attachments f
                                 WHERE f.id = wanted AND f.session_id = %(session_id)s
                                   AND f.state = 'ready')) AS attachments_missing,
       ARRAY(SELECT f.id FROM chat_attachments f
              WHERE f.id = ANY(%(attachment_ids)s::text[]) AND f.session_id = %(session_id)s
                AND f.message_id IS NOT NULL) AS attachments_taken

-- name: canned_list
SELECT id, shortcut, title, content, created_at, updated_at
  FROM chat_canned_responses
 ORDER BY shortcut

-- name: canned_add
-- A shortcut in use fails the unique constraint (a 409 naming it).
INSERT INTO chat_canned_responses (id, shortcut, title, content)
VALUES (%(id)s, %(shortcut)s, %(title)s, %(content)s)
RETURNING id, shortcut, title, content, created_at, updated_at

-- name: canned_update
-- Zero rows: no such response.
UPDATE chat_canned_responses
   SET shortcut = %(shortcut)s, title = %(title)s, content = %(content)s, updated_at = now()
 WHERE id = %(id)s
RETURNING id, shortcut, title, content, created_at, updated_at

-- name: canned_delete
DELETE FROM chat_canned_responses WHERE id = %(id)s RETURNING id
