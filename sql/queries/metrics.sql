-- name: metrics_snapshot
-- The cluster-wide figures behind /metrics and the STATUS line, read at scrape time. Completed
-- jobs are not counted: there may be millions, and their rate is in the attempt counters.
SELECT (SELECT count(*) FROM chat_webhook_queue WHERE status = 'pending') AS pending,
       (SELECT count(*) FROM chat_webhook_queue WHERE status = 'processing') AS processing,
       (SELECT count(*) FROM chat_webhook_queue WHERE status = 'dead') AS dead,
       (SELECT coalesce(extract(epoch FROM now() - min(next_retry_at)), 0)::float8
          FROM chat_webhook_queue
         WHERE status = 'pending' AND next_retry_at <= now()) AS oldest_due_seconds,
       (SELECT count(*) FROM chat_sessions
         WHERE status = 'active' AND expires_at > now()) AS active_sessions,
       (SELECT coalesce(sum(size + thumb_size), 0)::bigint FROM chat_attachments
         WHERE state = 'ready') AS attachment_bytes
