-- Agents online (chat_agent_presence) and handoffs waiting for a person (chat_handoffs, filled
-- from the audit trail by 0014's trigger): the nobody-there notice, its alerts and the metrics.

-- name: presence_enter
-- A socket opened, or renews its mark (the same statement: a row swept meanwhile comes back).
INSERT INTO chat_agent_presence (connection_id, agent_id, expires_at)
VALUES (%(connection_id)s, %(agent_id)s, now() + make_interval(secs => %(ttl_seconds)s))
ON CONFLICT (connection_id) DO UPDATE SET expires_at = EXCLUDED.expires_at

-- name: presence_leave
DELETE FROM chat_agent_presence WHERE connection_id = %(connection_id)s

-- name: presence_sweep
-- Rows of sockets whose process died without a goodbye, long expired (readers skip them anyway).
DELETE FROM chat_agent_presence WHERE expires_at < now() - interval '1 hour'

-- name: agents_online
-- Who has an inbox open now, anywhere in the cluster (a disabled agent is nobody).
SELECT a.id, a.name
  FROM chat_agents a
 WHERE NOT a.disabled
   AND EXISTS (SELECT 1 FROM chat_agent_presence p
                WHERE p.agent_id = a.id AND p.expires_at > now())
 ORDER BY a.name, a.id

-- name: handoffs_unchecked
-- Handoffs nobody has judged yet (whether anyone can answer), oldest first, with the database's
-- clock and the agents online at this moment.
SELECT h.id, h.session_id, h.requested_by, now() AS now,
       (SELECT count(DISTINCT p.agent_id) FROM chat_agent_presence p
          JOIN chat_agents a ON a.id = p.agent_id
         WHERE p.expires_at > now() AND NOT a.disabled) AS agents_online
  FROM chat_handoffs h
 WHERE h.checked_at IS NULL
 ORDER BY h.requested_at
 LIMIT %(limit)s

-- name: handoff_checked
-- Records the judgement of one handoff, once across the cluster (the conditional UPDATE: of two
-- processes, the second changes nothing); when nobody can answer and the conversation still
-- waits, the shopper's notice is stored in the same statement (its trigger tells every client).
WITH h AS (
    UPDATE chat_handoffs SET checked_at = now(), nobody = %(nobody)s
     WHERE id = %(handoff_id)s AND checked_at IS NULL
 RETURNING session_id
), s AS (
    UPDATE chat_sessions SET last_seq = last_seq + 1, updated_at = now()
     WHERE id = (SELECT session_id FROM h) AND %(nobody)s
       AND conversation_state = 'waiting' AND status = 'active' AND expires_at > now()
 RETURNING id, last_seq
), m AS (
    INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, metadata,
                               status, seq)
    SELECT %(message_id)s, s.id, 'system', %(content)s, 'text', %(metadata)s, 'delivered',
           s.last_seq
      FROM s
 RETURNING id
)
SELECT (SELECT count(*) FROM h) AS claimed, (SELECT count(*) FROM m) AS notified

-- name: handoffs_waited_long
-- Conversations still waiting longer than `seconds` whose long wait was not yet alerted; each is
-- claimed once across the cluster.
UPDATE chat_handoffs SET waiting_alerted_at = now()
 WHERE id IN (SELECT h.id FROM chat_handoffs h JOIN chat_sessions s ON s.id = h.session_id
               WHERE h.settled_at IS NULL AND h.waiting_alerted_at IS NULL
                 AND h.requested_at < now() - make_interval(secs => %(seconds)s)
                 AND s.conversation_state = 'waiting'
               ORDER BY h.requested_at
               LIMIT %(limit)s
                 FOR UPDATE OF h SKIP LOCKED)
RETURNING id, session_id, extract(epoch FROM now() - requested_at)::float8 AS waited_seconds

-- name: contact_email
-- The email a shopper leaves when nobody is there: the session's email from now on (the inbox
-- shows it; like the guestEmail given at the start, it is the shopper's word, so it stays out of
-- user_context, which holds proven claims only), with a system message that tells the shopper
-- and updates the inbox live.
WITH s AS (
    UPDATE chat_sessions
       SET guest_email = %(email)s, last_seq = last_seq + 1, updated_at = now()
     WHERE id = %(session_id)s AND status = 'active' AND expires_at > now()
 RETURNING id, last_seq
)
INSERT INTO chat_messages (id, session_id, sender_type, content, message_type, metadata, status,
                           seq)
SELECT %(message_id)s, s.id, 'system', %(content)s, 'text', %(metadata)s, 'delivered', s.last_seq
  FROM s
RETURNING id, session_id, sender_type, content, message_type, metadata, status, seq, created_at

-- name: handoff_figures
-- The metrics' cluster-wide figures: handoffs by who asked, conversations waiting now, agents
-- online, and the time from a handoff to the first human reply as cumulative bucket counts.
WITH replied AS (
    SELECT extract(epoch FROM first_reply_at - requested_at)::float8 AS seconds
      FROM chat_handoffs WHERE first_reply_at IS NOT NULL
)
SELECT (SELECT count(*) FROM chat_handoffs WHERE requested_by = 'shopper') AS by_shopper,
       (SELECT count(*) FROM chat_handoffs WHERE requested_by = 'bot') AS by_bot,
       (SELECT count(*) FROM chat_handoffs WHERE requested_by = 'agent') AS by_agent,
       (SELECT count(*) FROM chat_sessions
         WHERE conversation_state = 'waiting' AND status = 'active'
           AND expires_at > now()) AS waiting,
       (SELECT count(DISTINCT p.agent_id) FROM chat_agent_presence p
          JOIN chat_agents a ON a.id = p.agent_id
         WHERE p.expires_at > now() AND NOT a.disabled) AS agents_online,
       array(SELECT (SELECT count(*) FROM replied r WHERE r.seconds <= b.bound)
               FROM unnest(%(bounds)s::float8[]) WITH ORDINALITY AS b(bound, i)
              ORDER BY b.i) AS replied_le,
       (SELECT count(*) FROM replied) AS replied_count,
       (SELECT coalesce(sum(seconds), 0) FROM replied)::float8 AS replied_seconds
