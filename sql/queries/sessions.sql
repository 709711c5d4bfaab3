-- name: create_session
INSERT INTO chat_sessions (id, user_id, guest_email, metadata, user_context, token_hash, expires_at)
VALUES (%(id)s, %(user_id)s, %(guest_email)s, %(metadata)s, %(user_context)s, %(token_hash)s,
        now() + make_interval(secs => %(ttl_seconds)s))
RETURNING id, status, expires_at

-- name: session_auth
-- Everything a request needs to authorize and to tell "expired" from "unknown".
SELECT id, token_hash, status, metadata, expires_at, last_seq,
       (status = 'active' AND expires_at > now()) AS live
  FROM chat_sessions
 WHERE id = %(session_id)s
