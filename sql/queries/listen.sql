-- name: listen
-- {channel} is filled in with psycopg.sql.Identifier; LISTEN takes no bind parameters.
LISTEN {channel}
