-- name: n8n_chat_session
-- The session an @n8n/chat sessionId (by its key) stands for, and whether it is still live.
SELECT id, user_id, (status = 'active' AND expires_at > now()) AS live
  FROM chat_sessions
 WHERE n8n_chat_key = %(key)s

-- name: n8n_chat_release
-- An expired or closed session gives its key up, so the widget's next message starts afresh.
UPDATE chat_sessions
   SET n8n_chat_key = NULL
 WHERE n8n_chat_key = %(key)s
   AND NOT (status = 'active' AND expires_at > now())

-- name: create_n8n_chat_session
-- The key's session, new; two first messages at once: one inserts, the other gets no row and
-- reads the winner's (n8n_chat_session).
INSERT INTO chat_sessions (id, user_id, metadata, user_context, token_hash, n8n_chat_key,
                           expires_at)
VALUES (%(id)s, %(user_id)s, %(metadata)s, %(user_context)s, %(key)s, %(key)s,
        now() + make_interval(secs => %(ttl_seconds)s))
ON CONFLICT (n8n_chat_key) WHERE n8n_chat_key IS NOT NULL DO NOTHING
RETURNING id, user_id
