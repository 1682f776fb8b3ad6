-- date_column: hour
-- keys: [hour]
-- description: Per hour - concurrent users, events, errors (invalid events), error rate, health
-- tags: [demo, metrics]
SELECT
    event_hour AS hour,
    count(DISTINCT user_id) AS concurrent_users,
    count(*) AS events,
    count(*) FILTER (WHERE NOT is_valid) AS errors,
    round(count(*) FILTER (WHERE NOT is_valid) / count(*), 4) AS error_rate,
    CASE
        WHEN count(*) FILTER (WHERE NOT is_valid) / count(*) >= 0.1 THEN 'critical'
        WHEN count(*) FILTER (WHERE NOT is_valid) / count(*) >= 0.03 THEN 'degraded'
        ELSE 'healthy'
    END AS health_status
FROM silver.app_events
GROUP BY event_hour
