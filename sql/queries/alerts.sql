-- The alert rules' figures, read cluster-wide by the one chatd holding the "alerts" leader
-- lock, and the cooldown records in chat_alerts (chatd/db/alerts.py, chatd/ops/alerter.py).

-- name: alert_figures
-- One round trip, on the clock of the database (now() is the statement's start), over the last
-- `window_seconds`. Each part walks a (partial) index bounded by the window (spelled out in
-- each WHERE rather than taken from a CTE, so the planner sees how narrow it is).
--
-- Webhook failure rate = failed / attempts. The table keeps no row per attempt, so attempts are
-- counted from each job's state, once, when the job was last touched in the window. `attempts`
-- is bumped when a job is claimed (claim_jobs), so it counts the call in progress too, and it is
-- taken back when a shutdown releases the job untouched (release_job):
--   completed, completed_at in the window:          attempts tried, attempts - 1 failed
--                                                    (every call before the last one failed)
--   dead, updated_at in the window:                 attempts tried, all failed
--   pending with attempts > 0 (waiting to retry;
--     a lost lease counts as a failure too),
--     updated_at in the window:                     attempts tried, all failed
--   processing, updated_at (= claimed) in the window: attempts - 1 tried, all failed (the call
--                                                    in flight has no outcome yet; without
--                                                    this a job being retried would drop its
--                                                    failures from the count until it settles)
-- A job's earlier attempts may predate the window; a replayed dead letter starts again at 0.
--
-- Queue delay: how long the longest-waiting due job has waited, max(now() - next_retry_at)
-- over pending jobs with next_retry_at <= now() (those queued behind their session's head
-- included: their shopper is waiting just the same); 0 when none is due.
--
-- Response time: the average of (bot reply stored - the user message it answers stored) over
-- the bot replies stored in the window, joined through chat_messages.reply_to. The fallback
-- reply after a dead letter counts (the shopper waited that long for it), as it does in the
-- chatd_response_time_seconds histogram. NULL when no reply was stored in the window.
WITH tried AS (
    SELECT attempts AS tried, attempts - 1 AS failed
      FROM chat_webhook_queue
     WHERE status = 'completed'
       AND completed_at >= now() - make_interval(secs => %(window_seconds)s)
    UNION ALL
    SELECT attempts, attempts
      FROM chat_webhook_queue
     WHERE status = 'dead'
       AND updated_at >= now() - make_interval(secs => %(window_seconds)s)
    UNION ALL
    SELECT attempts, attempts
      FROM chat_webhook_queue
     WHERE status = 'pending' AND attempts > 0
       AND updated_at >= now() - make_interval(secs => %(window_seconds)s)
    UNION ALL
    SELECT attempts - 1, attempts - 1
      FROM chat_webhook_queue
     WHERE status = 'processing' AND attempts > 1
       AND updated_at >= now() - make_interval(secs => %(window_seconds)s)
), replies AS (
    SELECT extract(epoch FROM b.created_at - u.created_at)::float8 AS seconds
      FROM chat_messages b
      JOIN chat_messages u ON u.id = b.reply_to AND u.sender_type = 'user'
     WHERE b.sender_type = 'bot'
       AND b.created_at >= now() - make_interval(secs => %(window_seconds)s)
)
SELECT now() AS measured_at,
       (SELECT coalesce(sum(tried), 0) FROM tried)::bigint AS attempts,
       (SELECT coalesce(sum(failed), 0) FROM tried)::bigint AS failed_attempts,
       (SELECT coalesce(extract(epoch FROM now() - min(next_retry_at)), 0)::float8
          FROM chat_webhook_queue
         WHERE status = 'pending' AND next_retry_at <= now()) AS queue_delay_seconds,
       (SELECT count(*) FROM replies) AS replies,
       (SELECT avg(seconds) FROM replies) AS response_time_seconds

-- name: alert_last_fired
SELECT rule, last_fired_at FROM chat_alerts

-- name: claim_alert
-- Record a firing if the rule never fired or its cooldown has passed: the test and the write
-- are one statement, so of two chatd racing (a leader lock handed over mid-round) only one gets
-- a row back, and only that one posts. The racer's ON CONFLICT waits for the winner's row and
-- re-checks the WHERE on it. `previous_*` is the record as it was, to restore if the post fails.
WITH previous AS (
    SELECT last_fired_at, last_value FROM chat_alerts WHERE rule = %(rule)s
)
INSERT INTO chat_alerts AS a (rule, last_fired_at, last_value, fired_count)
VALUES (%(rule)s, now(), %(value)s, 1)
    ON CONFLICT (rule) DO UPDATE
   SET last_fired_at = excluded.last_fired_at, last_value = excluded.last_value,
       fired_count = a.fired_count + 1
 WHERE a.last_fired_at <= now() - make_interval(secs => %(cooldown_seconds)s)
RETURNING a.rule, a.last_fired_at AS fired_at, a.fired_count,
          (SELECT last_fired_at FROM previous) AS previous_fired_at,
          (SELECT last_value FROM previous) AS previous_value

-- name: restore_alert
-- The post failed: put the record back as it was before our claim, so the next round fires
-- again. Fenced on our claim: a record written since is left alone.
UPDATE chat_alerts
   SET last_fired_at = %(previous_fired_at)s, last_value = %(previous_value)s,
       fired_count = fired_count - 1
 WHERE rule = %(rule)s AND last_fired_at = %(fired_at)s AND fired_count = %(fired_count)s
RETURNING rule

-- name: forget_alert
-- As restore_alert, for a rule whose first firing it was.
DELETE FROM chat_alerts
 WHERE rule = %(rule)s AND last_fired_at = %(fired_at)s AND fired_count = %(fired_count)s
RETURNING rule
