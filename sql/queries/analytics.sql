-- Conversation insights (chatd/db/analytics.py): hourly rollups kept by the maintenance leader,
-- and the reads of the analytics API. The figures of an hour are defined once, by the functions
-- chatd_analytics_hours and chatd_analytics_intents (sql/migrations/0010_ratings_analytics.sql).

-- name: analytics_rollup_plan
-- Where the rollups end, the hour they may reach now (every hour over, and `margin_seconds` more
-- for transactions that began in it and still commit), and the oldest row (where to begin).
SELECT s.rolled_until,
       date_trunc('hour', now() - make_interval(secs => %(margin_seconds)s), 'UTC') AS target,
       date_trunc('hour', least((SELECT min(created_at) FROM chat_sessions),
                                (SELECT min(created_at) FROM chat_messages)), 'UTC') AS oldest
  FROM chat_analytics_state s

-- name: analytics_rollup
-- One batch of hours [since, until) rolled up, and the watermark moved, in one statement.
WITH hourly AS (
    INSERT INTO chat_analytics_hourly
    SELECT * FROM chatd_analytics_hours(%(since)s, %(until)s, %(bounds)s)
    ON CONFLICT (hour) DO UPDATE
       SET conversations = EXCLUDED.conversations, user_messages = EXCLUDED.user_messages,
           bot_messages = EXCLUDED.bot_messages, system_messages = EXCLUDED.system_messages,
           answers = EXCLUDED.answers, answer_seconds = EXCLUDED.answer_seconds,
           answer_buckets = EXCLUDED.answer_buckets, dead_letters = EXCLUDED.dead_letters,
           retries = EXCLUDED.retries, ratings = EXCLUDED.ratings
    RETURNING 1
), intents AS (
    INSERT INTO chat_analytics_intents
    SELECT * FROM chatd_analytics_intents(%(since)s, %(until)s)
    ON CONFLICT (hour, intent) DO UPDATE SET n = EXCLUDED.n
    RETURNING 1
)
UPDATE chat_analytics_state
   SET rolled_until = %(until)s
RETURNING (SELECT count(*) FROM hourly) AS hours, (SELECT count(*) FROM intents) AS intents

-- name: analytics_rolled_until
SELECT rolled_until FROM chat_analytics_state

-- name: analytics_hours
-- Every hour of [since, until): rolled up before `rolled`, aggregated live from it on.
SELECT * FROM chat_analytics_hourly
 WHERE hour >= %(since)s AND hour < least(%(until)s, %(rolled)s)
UNION ALL
SELECT * FROM chatd_analytics_hours(greatest(%(since)s, %(rolled)s), %(until)s, %(bounds)s)
 ORDER BY hour

-- name: analytics_intents
-- The `limit` intents named most often in [since, until), rolled up and live alike.
SELECT intent, sum(n)::bigint AS n
  FROM (SELECT intent, n FROM chat_analytics_intents
         WHERE hour >= %(since)s AND hour < least(%(until)s, %(rolled)s)
        UNION ALL
        SELECT intent, n FROM chatd_analytics_intents(greatest(%(since)s, %(rolled)s), %(until)s)
       ) AS named
 GROUP BY intent
 ORDER BY n DESC, intent
 LIMIT %(limit)s
