-- Limits that hold across every chatd process on the database (chatd/db/limits.py).

-- name: hit_address_limit
-- Count one hit for (scope, key) unless the sliding estimate already reached `limit` (NULL: count
-- it regardless, e.g. a wrong token that must be paid for). One statement: the conflicting row
-- is locked and its latest version read, so concurrent hits from any process are all counted.
-- The estimate: the previous fixed window's hits, weighted by the share of it still inside the
-- sliding window, plus the current window's. A row from an older window counts nothing.
-- No row back: refused (then address_limit_state tells for how long).
INSERT INTO chat_rate_limits AS r (scope, key, window_no, hits, previous_hits, expires_at)
SELECT %(scope)s, %(key)s, w.n, 1, 0, to_timestamp((w.n + 2) * %(window)s::float8)
  FROM (SELECT floor(extract(epoch FROM now()) / %(window)s::float8)::bigint AS n) AS w
ON CONFLICT (scope, key) DO UPDATE
   SET window_no = excluded.window_no,
       hits = CASE WHEN r.window_no = excluded.window_no THEN r.hits + 1 ELSE 1 END,
       previous_hits = CASE WHEN r.window_no = excluded.window_no THEN r.previous_hits
                            WHEN r.window_no = excluded.window_no - 1 THEN r.hits
                            ELSE 0 END,
       expires_at = excluded.expires_at
 WHERE %(limit)s::integer IS NULL
    OR (CASE WHEN r.window_no = excluded.window_no THEN r.hits ELSE 0 END)
       + (CASE WHEN r.window_no = excluded.window_no THEN r.previous_hits
               WHEN r.window_no = excluded.window_no - 1 THEN r.hits
               ELSE 0 END)
         * (1 - (extract(epoch FROM now()) / %(window)s::float8 - excluded.window_no))
       < %(limit)s::integer
RETURNING hits

-- name: address_limit_state
-- The counts a refusal's Retry-After is worked out from (chatd/core/ratelimit.py), with the
-- database's clock in windows since the epoch.
SELECT window_no, hits, previous_hits,
       extract(epoch FROM now())::float8 / %(window)s::float8 AS now_windows
  FROM chat_rate_limits
 WHERE scope = %(scope)s AND key = %(key)s

-- name: sweep_rate_limits
-- By the maintenance leader: rows whose windows are over count nothing.
DELETE FROM chat_rate_limits
 WHERE ctid = ANY(ARRAY(SELECT ctid FROM chat_rate_limits WHERE expires_at < now()
                         LIMIT %(limit)s))
   AND expires_at < now()
RETURNING 1

-- name: admit_live_connection
-- Serialized per address inside the function (sql/migrations/0007_cluster_limits.sql).
SELECT chatd_admit_connection(%(owner)s, %(address)s, %(limit)s, %(released)s) AS total

-- name: release_live_connections
-- Connections of this process that ended, per address, in one statement.
UPDATE chat_live_connections c
   SET connections = greatest(c.connections - r.ended, 0)
  FROM unnest(%(addresses)s::text[], %(ended)s::integer[]) AS r(address, ended)
 WHERE c.address = r.address AND c.owner_token = %(owner)s

-- name: register_live_connections
-- This process's connections as they are now, replacing whatever its rows said: after its
-- owner lock was taken again (the rows may have been swept meanwhile) or a release was lost.
WITH mine AS (
    SELECT * FROM unnest(%(addresses)s::text[], %(counts)s::integer[]) AS m(address, connections)
), gone AS (
    DELETE FROM chat_live_connections c
     WHERE c.owner_token = %(owner)s
       AND NOT EXISTS (SELECT 1 FROM mine WHERE mine.address = c.address)
)
INSERT INTO chat_live_connections AS c (address, owner_token, connections)
SELECT address, %(owner)s, connections FROM mine
ON CONFLICT (address, owner_token) DO UPDATE SET connections = excluded.connections

-- name: sweep_live_connections
-- The rows of processes whose owner lock is gone (they died), and empty rows; by a process that
-- holds its own lock, and never its own rows (as rescue_expired_leases).
WITH live AS (
    SELECT l.objid::bigint AS token
      FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %(namespace)s::bigint::oid
       AND l.objsubid = 2
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
DELETE FROM chat_live_connections c
 WHERE c.connections = 0
    OR (c.owner_token <> %(own_token)s AND c.owner_token NOT IN (SELECT token FROM live))
RETURNING c.owner_token, c.connections
