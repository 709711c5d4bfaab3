-- name: migration_lock
-- Held for the whole run, so two processes migrating at once apply each file once.
SELECT pg_advisory_lock(hashtext('chatd.migrations'))

-- name: migration_unlock
SELECT pg_advisory_unlock(hashtext('chatd.migrations'))

-- name: migration_table
CREATE TABLE IF NOT EXISTS chatd_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)

-- name: migration_applied
SELECT version, name, checksum FROM chatd_migrations ORDER BY version

-- name: migration_record
INSERT INTO chatd_migrations (version, name, checksum) VALUES (%(version)s, %(name)s, %(checksum)s)

-- name: migration_table_exists
SELECT to_regclass('chatd_migrations') IS NOT NULL AS present
