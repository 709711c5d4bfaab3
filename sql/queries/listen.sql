-- name: listen
-- {channel} is filled in with psycopg.sql.Identifier; LISTEN takes no bind parameters.
LISTEN {channel}

-- name: notify_event
-- An event that is not stored (typing) for every chatd process; see chatd/realtime/router.py.
SELECT pg_notify('chatd_events', %(payload)s)

-- name: notify_events
-- Several at once, in order, in one transaction: a batch of streamed pieces
-- (chatd/realtime/relay.py).
SELECT pg_notify('chatd_events', q.payload)
  FROM (SELECT p.payload FROM unnest(%(payloads)s::text[]) WITH ORDINALITY AS p(payload, n)
         ORDER BY p.n) AS q

-- name: take_owner_lock
-- Session-level, on the LISTEN connection: held while this process (and that connection) lives.
-- False while another session holds it: our previous connection's backend, not yet gone.
SELECT pg_try_advisory_lock(%(namespace)s, %(token)s) AS locked
