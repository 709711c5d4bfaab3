-- name: agent_add
INSERT INTO chat_agents (id, name, email, role, password_hash)
VALUES (%(id)s, %(name)s, %(email)s, %(role)s, %(password_hash)s)
RETURNING id, name, email, role, disabled, created_at

-- name: agent_list
SELECT id, name, email, role, disabled, created_at
  FROM chat_agents
 ORDER BY lower(email)

-- name: agent_by_email
SELECT id, name, email, role, disabled, created_at, password_hash
  FROM chat_agents
 WHERE lower(email) = lower(%(email)s)

-- name: agent_disable
-- Disabled at once: its browser sessions go in the same statement.
WITH a AS (
    UPDATE chat_agents SET disabled = true, updated_at = now()
     WHERE lower(email) = lower(%(email)s)
 RETURNING id
), gone AS (
    DELETE FROM chat_agent_sessions WHERE agent_id IN (SELECT id FROM a)
)
SELECT id FROM a

-- name: agent_set_password
-- A new password signs every browser out (whoever knew the old one is out too).
WITH a AS (
    UPDATE chat_agents SET password_hash = %(password_hash)s, updated_at = now()
     WHERE lower(email) = lower(%(email)s)
 RETURNING id
), gone AS (
    DELETE FROM chat_agent_sessions WHERE agent_id IN (SELECT id FROM a)
)
SELECT id FROM a

-- name: agent_session_create
INSERT INTO chat_agent_sessions (token_hash, agent_id) VALUES (%(token_hash)s, %(agent_id)s)

-- name: agent_session_touch
-- The agent a browser session belongs to, if it is still good (agent enabled, used within the
-- idle timeout), and marks it used now. A disabled agent or an idle session matches nothing.
UPDATE chat_agent_sessions s
   SET last_seen_at = now()
  FROM chat_agents a
 WHERE s.token_hash = %(token_hash)s AND a.id = s.agent_id AND NOT a.disabled
   AND s.last_seen_at > now() - make_interval(secs => %(idle_seconds)s)
RETURNING a.id, a.name, a.email, a.role, a.disabled, a.created_at

-- name: agent_session_delete
DELETE FROM chat_agent_sessions WHERE token_hash = %(token_hash)s

-- name: agent_sessions_sweep
-- Idle browser sessions, deleted (they would be refused anyway).
DELETE FROM chat_agent_sessions
 WHERE last_seen_at <= now() - make_interval(secs => %(idle_seconds)s)
