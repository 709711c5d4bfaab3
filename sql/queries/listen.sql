-- name: listen
-- {channel} is filled in with psycopg.sql.Identifier; LISTEN takes no bind parameters.
LISTEN {channel}

-- name: notify_event
-- An event that is not stored (typing) for every chatd process; see chatd/realtime/router.py.
SELECT pg_notify('chatd_events', %(payload)s)
