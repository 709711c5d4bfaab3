-- Conversation insights: how a conversation ended, the shopper's rating of it, and hourly
-- rollups of the numbers the analytics page shows.
--
-- Rollups, not live aggregates, because cleanup deletes a conversation soon after it expires:
-- the numbers must outlive the rows. An hour is rolled up once it is over (plus a margin for
-- transactions still committing), by the maintenance leader; the hours since are aggregated live
-- (chatd/db/analytics.py). Cleanup deletes a session only once its last activity is rolled up.

ALTER TABLE chat_sessions
    ADD COLUMN closed_at  timestamptz,
    ADD COLUMN closed_by  text CHECK (closed_by IN ('shopper', 'staff'));

-- One rating per conversation, given after it ended.
CREATE TABLE chat_ratings (
    session_id  text PRIMARY KEY REFERENCES chat_sessions (id) ON DELETE CASCADE,
    rating      smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment     text CHECK (char_length(comment) <= 1000),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_chat_ratings_created_at ON chat_ratings (created_at);

-- One row per hour (its start, UTC), for every hour rolled up, also the empty ones.
CREATE TABLE chat_analytics_hourly (
    hour             timestamptz PRIMARY KEY,
    conversations    integer NOT NULL,        -- sessions created
    user_messages    integer NOT NULL,
    bot_messages     integer NOT NULL,
    system_messages  integer NOT NULL,
    answers          integer NOT NULL,        -- bot replies to a shopper's message (no fallbacks)
    answer_seconds   double precision NOT NULL, -- their answer times, summed
    -- Answer times counted in the buckets of chatd/core/insights.py ANSWER_BOUNDS (the last one
    -- above them all): summed over hours, they give p50/p95 of any range.
    answer_buckets   integer[] NOT NULL,
    dead_letters     integer NOT NULL,        -- fallback replies stored (a job died)
    retries          integer NOT NULL,        -- attempts beyond the first, of messages settled
    ratings          integer[] NOT NULL       -- ratings given, by value 1..5
);

-- Intents n8n named in its replies' metadata (metadata.n8n.intent), per hour.
CREATE TABLE chat_analytics_intents (
    hour    timestamptz NOT NULL,
    intent  text NOT NULL,
    n       integer NOT NULL,
    PRIMARY KEY (hour, intent)
);

-- Where the rollups end: every hour before rolled_until is in chat_analytics_hourly.
CREATE TABLE chat_analytics_state (
    one            boolean PRIMARY KEY DEFAULT true CHECK (one),
    rolled_until   timestamptz
);
INSERT INTO chat_analytics_state (one, rolled_until) VALUES (true, NULL);

-- The figures of every hour in [since, until) (hour-aligned, UTC), from the rows themselves:
-- what the rollup stores and what the API adds for the hours not rolled up yet, one definition
-- for both. Each part walks a created_at index within the range. Answer time: a bot reply's
-- created_at minus that of the message it answers; dead letters: the fallback replies; retries:
-- attempts beyond the first of the messages answered (or given up) in the hour.
CREATE FUNCTION chatd_analytics_hours(since timestamptz, until timestamptz, bounds float8[])
RETURNS TABLE (
    hour timestamptz, conversations integer, user_messages integer, bot_messages integer,
    system_messages integer, answers integer, answer_seconds double precision,
    answer_buckets integer[], dead_letters integer, retries integer, ratings integer[]
) LANGUAGE sql STABLE AS $$
WITH hours AS (
    SELECT h FROM generate_series(since, until - interval '1 hour', interval '1 hour') AS h
), started AS (
    SELECT date_trunc('hour', created_at, 'UTC') AS h, count(*) AS n
      FROM chat_sessions WHERE created_at >= since AND created_at < until
     GROUP BY 1
), sent AS (
    SELECT date_trunc('hour', created_at, 'UTC') AS h,
           count(*) FILTER (WHERE sender_type = 'user') AS users,
           count(*) FILTER (WHERE sender_type = 'bot') AS bots,
           count(*) FILTER (WHERE sender_type = 'system') AS systems
      FROM chat_messages WHERE created_at >= since AND created_at < until
     GROUP BY 1
), replies AS (
    SELECT date_trunc('hour', r.created_at, 'UTC') AS h,
           coalesce(r.metadata @> '{"fallback": true}', false) AS fallback,
           extract(epoch FROM r.created_at - u.created_at)::float8 AS seconds,
           u.webhook_attempts AS attempts
      FROM chat_messages r JOIN chat_messages u ON u.id = r.reply_to
     WHERE r.created_at >= since AND r.created_at < until
       AND r.sender_type = 'bot' AND r.reply_to IS NOT NULL
), settled AS (
    SELECT h, count(*) FILTER (WHERE NOT fallback) AS answers,
           coalesce(sum(seconds) FILTER (WHERE NOT fallback), 0) AS seconds,
           count(*) FILTER (WHERE fallback) AS dead,
           coalesce(sum(greatest(attempts - 1, 0)), 0) AS retries
      FROM replies GROUP BY h
), counted AS (
    SELECT h, width_bucket(seconds, bounds) AS i, count(*) AS n
      FROM replies WHERE NOT fallback GROUP BY 1, 2
), histogram AS (
    SELECT a.h, array_agg(coalesce(c.n, 0)::integer ORDER BY b.i) AS buckets
      FROM (SELECT DISTINCT h FROM counted) AS a
     CROSS JOIN generate_series(0, cardinality(bounds)) AS b(i)
      LEFT JOIN counted c ON c.h = a.h AND c.i = b.i
     GROUP BY a.h
), rated AS (
    SELECT date_trunc('hour', created_at, 'UTC') AS h,
           ARRAY[count(*) FILTER (WHERE rating = 1), count(*) FILTER (WHERE rating = 2),
                 count(*) FILTER (WHERE rating = 3), count(*) FILTER (WHERE rating = 4),
                 count(*) FILTER (WHERE rating = 5)]::integer[] AS ratings
      FROM chat_ratings WHERE created_at >= since AND created_at < until
     GROUP BY 1
)
SELECT hours.h, coalesce(started.n, 0)::integer, coalesce(sent.users, 0)::integer,
       coalesce(sent.bots, 0)::integer, coalesce(sent.systems, 0)::integer,
       coalesce(settled.answers, 0)::integer, coalesce(settled.seconds, 0)::float8,
       coalesce(histogram.buckets, '{}'::integer[]), coalesce(settled.dead, 0)::integer,
       coalesce(settled.retries, 0)::integer,
       coalesce(rated.ratings, '{0,0,0,0,0}'::integer[])
  FROM hours
  LEFT JOIN started ON started.h = hours.h
  LEFT JOIN sent ON sent.h = hours.h
  LEFT JOIN settled ON settled.h = hours.h
  LEFT JOIN histogram ON histogram.h = hours.h
  LEFT JOIN rated ON rated.h = hours.h
 ORDER BY hours.h
$$;

-- The intents n8n named (metadata.n8n.intent of bot replies) in every hour of [since, until).
CREATE FUNCTION chatd_analytics_intents(since timestamptz, until timestamptz)
RETURNS TABLE (hour timestamptz, intent text, n integer) LANGUAGE sql STABLE AS $$
SELECT date_trunc('hour', created_at, 'UTC'), left(metadata -> 'n8n' ->> 'intent', 100),
       count(*)::integer
  FROM chat_messages
 WHERE created_at >= since AND created_at < until AND sender_type = 'bot'
   AND nullif(metadata -> 'n8n' ->> 'intent', '') IS NOT NULL
 GROUP BY 1, 2
$$;
