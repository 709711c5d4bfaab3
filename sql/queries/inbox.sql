-- name: conversation_change
-- One change of a conversation's state, fenced on what it is now: the session moves from one of
-- `from_states` to `to_state` (held by `to_agent`), unless it is held by someone other than
-- `holder` (NULL: anyone may); a system message with the session's next seq tells every client
-- (its trigger notifies every process), and an audit row records who did it. A conditional
-- UPDATE: of two agents taking the same conversation at once, the second finds it 'human' after
-- the first commits (PostgreSQL re-checks the WHERE on the row it waited for) and changes nothing.
-- Closing ends the session as staff closing it from the admin API does (close_session): status
-- 'closed', closed_by 'staff', so the widget asks for a rating if csat.ask_on has staff.
WITH s AS (
    UPDATE chat_sessions
       SET conversation_state = %(to_state)s, agent_id = %(to_agent)s,
           status = CASE WHEN %(to_state)s = 'closed' THEN 'closed' ELSE status END,
           closed_at = CASE WHEN %(to_state)s = 'closed' THEN now() ELSE closed_at END,
           closed_by = CASE WHEN %(to_state)s = 'closed' THEN 'staff' ELSE closed_by END,
           handoff_reason = CASE WHEN %(to_state)s = 'waiting' THEN %(reason)s
                                 ELSE handoff_reason END,
           state_changed_at = now(), last_seq = last_seq + 1, updated_at = now()
     WHERE id = %(session_id)s AND status = 'active' AND expires_at > now()
       AND conversation_state = ANY(%(from_states)s::text[])
       AND (%(holder)s::text IS NULL OR conversation_state <> 'human' OR agent_id = %(holder)s)
 RETURNING id, last_seq
), m AS (
    INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, metadata,
                               status, seq)
    SELECT %(message_id)s, s.id, 'system', %(content)s, 'text', %(metadata)s, 'delivered',
           s.last_seq
      FROM s
 RETURNING id, session_id, sender_type, content, message_type, metadata, status, seq, created_at
), audit AS (
    INSERT INTO chat_audit (session_id, agent_id, action, detail)
    SELECT s.id, %(actor)s, %(action)s, %(detail)s FROM s
)
SELECT m.* FROM m

-- name: conversation_now
-- Why conversation_change changed nothing: the conversation as it is (and who holds it).
SELECT s.id, s.conversation_state, s.agent_id, a.name AS agent_name,
       (s.status = 'active' AND s.expires_at > now()) AS live
  FROM chat_sessions s LEFT JOIN chat_agents a ON a.id = s.agent_id
 WHERE s.id = %(session_id)s

-- name: agent_message
-- An agent's reply, only while that agent holds the conversation; stored delivered (nothing to
-- send to n8n), with the agent's display name for the widget, and audited. Its files
-- (`attachment_ids`, in order; empty for none) must be ready uploads of this session that no
-- message has taken, locked as send_user_message locks them; else nothing is stored
-- (agent_files_refusal says why).
WITH a AS MATERIALIZED (
    SELECT id, name, type, size, kind, width, height, thumb_type
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
           count(*) AS found
      FROM a
), s AS (
    UPDATE chat_sessions SET last_seq = last_seq + 1, updated_at = now()
     WHERE id = %(session_id)s AND status = 'active' AND expires_at > now()
       AND conversation_state = 'human' AND agent_id = %(agent_id)s
       AND (SELECT found FROM files) = cardinality(%(attachment_ids)s::text[])
 RETURNING id, last_seq
), m AS (
    INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, metadata,
                               status, seq, attachments)
    SELECT %(message_id)s, s.id, 'agent', %(content)s, 'text',
           jsonb_build_object('agentName', %(agent_name)s::text), 'delivered', s.last_seq,
           files.described
      FROM s, files
 RETURNING id, session_id, sender_type, content, message_type, metadata, status, seq, created_at,
           attachments
), taken AS (
    UPDATE chat_attachments SET message_id = m.id FROM m WHERE chat_attachments.id IN (SELECT id FROM a)
), audit AS (
    INSERT INTO chat_audit (session_id, agent_id, action, detail)
    SELECT m.session_id, %(agent_id)s, 'replied', jsonb_build_object('messageId', m.id) FROM m
)
SELECT m.* FROM m

-- name: inbox_list
-- One of the inbox's lists, most recent activity first, through idx_chat_sessions_inbox:
-- sessions in `states` (held by `agent_id` when given), each with its newest message and how
-- many of the shopper's messages `reader` (an agent) has not read (at most 100: a page's rows,
-- each a short walk of the messages' (session_id, seq) index); live ones, except in the closed
-- list (ended sessions, until cleanup deletes them).
SELECT s.id, s.user_id, s.guest_email, s.metadata, s.user_context, s.conversation_state,
       s.agent_id, a.name AS agent_name, s.handoff_reason, s.state_changed_at, s.created_at,
       s.updated_at, s.last_seq, last.sender_type AS last_sender,
       left(last.content, 140) AS last_content, last.created_at AS last_at,
       coalesce(r.last_read_seq, 0) AS last_read_seq, unread.n AS unread
  FROM chat_sessions s
  LEFT JOIN chat_agents a ON a.id = s.agent_id
  LEFT JOIN LATERAL (SELECT sender_type, content, created_at FROM chat_messages c
                      WHERE c.session_id = s.id
                      ORDER BY c.seq DESC
                      LIMIT 1) AS last ON true
  LEFT JOIN chat_agent_reads r ON r.agent_id = %(reader)s AND r.session_id = s.id
  CROSS JOIN LATERAL (SELECT count(*) AS n
                        FROM (SELECT 1 FROM chat_messages u
                               WHERE u.session_id = s.id
                                 AND u.seq > coalesce(r.last_read_seq, 0)
                                 AND u.sender_type = 'user'
                               LIMIT 100) AS x) AS unread
 WHERE s.conversation_state = ANY(%(states)s::text[])
   AND (s.conversation_state = 'closed' OR (s.status = 'active' AND s.expires_at > now()))
   AND (%(agent_id)s::text IS NULL OR s.agent_id = %(agent_id)s)
 ORDER BY s.updated_at DESC, s.id
 LIMIT %(limit)s

-- name: inbox_conversation
-- One conversation as the inbox lists it (a live update re-reads only the one that changed), with
-- `reader`'s unread count.
SELECT s.id, s.user_id, s.guest_email, s.metadata, s.user_context, s.conversation_state,
       s.agent_id, a.name AS agent_name, s.handoff_reason, s.state_changed_at, s.created_at,
       s.updated_at, s.last_seq, last.sender_type AS last_sender,
       left(last.content, 140) AS last_content, last.created_at AS last_at,
       coalesce(r.last_read_seq, 0) AS last_read_seq, unread.n AS unread
  FROM chat_sessions s
  LEFT JOIN chat_agents a ON a.id = s.agent_id
  LEFT JOIN LATERAL (SELECT sender_type, content, created_at FROM chat_messages c
                      WHERE c.session_id = s.id
                      ORDER BY c.seq DESC
                      LIMIT 1) AS last ON true
  LEFT JOIN chat_agent_reads r ON r.agent_id = %(reader)s AND r.session_id = s.id
  CROSS JOIN LATERAL (SELECT count(*) AS n
                        FROM (SELECT 1 FROM chat_messages u
                               WHERE u.session_id = s.id
                                 AND u.seq > coalesce(r.last_read_seq, 0)
                                 AND u.sender_type = 'user'
                               LIMIT 100) AS x) AS unread
 WHERE s.id = %(session_id)s

-- name: conversation_audit
SELECT a.action, a.agent_id, g.name AS agent_name, a.detail, a.created_at
  FROM chat_audit a LEFT JOIN chat_agents g ON g.id = a.agent_id
 WHERE a.session_id = %(session_id)s
 ORDER BY a.id

-- name: agent_by_id
SELECT id, name, email, role, disabled, created_at FROM chat_agents WHERE id = %(id)s
