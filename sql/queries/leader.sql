-- name: try_leader_lock
-- Session-level: held by the connection until released (or until the connection dies, which
-- is what hands the job to another chatd).
SELECT pg_try_advisory_lock(hashtext('chatd.leader.' || %(name)s)) AS locked

-- name: leader_unlock
SELECT pg_advisory_unlock(hashtext('chatd.leader.' || %(name)s)) AS unlocked
