-- The database as the cluster's coordinator (docs/operations.md, "Several processes"):
--
-- * Owner tokens. Every chatd process holds a session-level advisory lock, key
--   (1667785076, its token), on its LISTEN connection while it lives (chatd/db/owner.py). A
--   claim records the claimer's token, so a job whose owner's lock is gone (the process died)
--   is rescued at once instead of when its lease ends; the lease stays the backstop for a
--   process that is frozen but still connected.
-- * Limits that hold across processes: a session's sliding log of user sends on its own row
--   (checked and updated under the row lock the send takes anyway), per-address counters in
--   chat_rate_limits, live connections per address in chat_live_connections.
--
-- Both tables are UNLOGGED: nothing in them must survive a PostgreSQL crash (counters restart
-- empty; every chatd registers its live connections again when its LISTEN connection returns),
-- and their writes, on the hot paths, skip the WAL.

ALTER TABLE chat_webhook_queue
    ADD COLUMN owner_token integer;            -- the claimer's advisory-lock token; NULL: lease only

ALTER TABLE chat_sessions
    -- When the session's recent user messages were stored, oldest first: at most
    -- chat.rate_limit_max of them, none older than the window.
    ADD COLUMN recent_sends timestamptz[] NOT NULL DEFAULT '{}';

-- Fixed windows numbered floor(epoch / window); the previous window's count, weighted by how
-- much of it still overlaps the sliding window, estimates the hits in the last `window`.
CREATE UNLOGGED TABLE chat_rate_limits (
    scope          text NOT NULL,              -- e.g. 'session_create', 'operator_auth_failure'
    key            text NOT NULL,              -- the client address
    window_no      bigint NOT NULL,
    hits           integer NOT NULL,           -- in window window_no
    previous_hits  integer NOT NULL,           -- in window window_no - 1
    expires_at     timestamptz NOT NULL,       -- past this the row counts nothing: swept
    PRIMARY KEY (scope, key)
);
CREATE INDEX idx_chat_rate_limits_expires_at ON chat_rate_limits (expires_at);

-- One row per (address, process): the sum over an address is its live connections in the
-- cluster. A process's rows go when its owner lock does (swept by the survivors).
CREATE UNLOGGED TABLE chat_live_connections (
    address      text NOT NULL,
    owner_token  integer NOT NULL,
    connections  integer NOT NULL CHECK (connections >= 0),
    PRIMARY KEY (address, owner_token)
);
CREATE INDEX idx_chat_live_connections_owner ON chat_live_connections (owner_token);

-- Admit one more live connection for `address` unless it already holds `max_connections`
-- across the cluster; returns the new total, or NULL when refused. A function, because the
-- check must see every admission committed before it: the transaction-level advisory lock
-- serializes admissions per address, and each statement below takes a fresh snapshot once the
-- lock is held (a single statement would count with a snapshot taken before it waited).
-- Releases and sweeps only lower counts, so they need no lock.
-- `released`: connections of this owner at this address that ended since it last told (they are
-- subtracted first, so a place freed a moment ago on this process is free here too).
CREATE FUNCTION chatd_admit_connection(
    owner integer, addr text, max_connections integer, released integer
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    total integer;
BEGIN
    PERFORM pg_advisory_xact_lock(1667785077, hashtext(addr));
    IF released > 0 THEN
        UPDATE chat_live_connections SET connections = greatest(connections - released, 0)
         WHERE address = addr AND owner_token = owner;
    END IF;
    SELECT coalesce(sum(connections), 0) INTO total
      FROM chat_live_connections WHERE address = addr;
    IF total >= max_connections THEN
        RETURN NULL;
    END IF;
    INSERT INTO chat_live_connections AS c (address, owner_token, connections)
    VALUES (addr, owner, 1)
    ON CONFLICT (address, owner_token) DO UPDATE SET connections = c.connections + 1;
    RETURN total + 1;
END $$;
