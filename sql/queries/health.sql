-- name: health_counts
SELECT (SELECT count(*) FROM chat_webhook_queue WHERE status = 'pending') AS pending_webhooks,
       (SELECT count(*) FROM chat_sessions
         WHERE status = 'active' AND expires_at > now()) AS active_sessions,
       (SELECT count(*) FROM chat_messages
         WHERE created_at > now() - interval '24 hours') AS messages_last_24h,
       (SELECT count(*) FROM chat_webhook_queue WHERE status = 'dead') AS dead_letters,
       (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
          FROM chat_webhook_queue WHERE status = 'pending') AS oldest_pending_seconds

-- name: ping
SELECT 1 AS ok
