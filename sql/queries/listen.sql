-- name: listen
-- {channel} is filled in with psycopg.sql.Identifier; LISTEN takes no bind parameters.
LISTEN {channel}

-- name: notify_event
-- An event that is not stored (typing) for every chatd process; see chatd/realtime/router.py.
SELECT pg_notify('chatd_events', %(payload)s)

-- name: take_owner_lock
-- Session-level, on the LISTEN connection: held while this process (and that connection) lives.
-- False while another session holds it: our previous connection's backend, not yet gone.
SELECT pg_try_advisory_lock(%(namespace)s, %(token)s) AS locked
