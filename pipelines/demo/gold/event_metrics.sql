-- date_column: event_hour
-- keys: [event_hour, event_type, app_type]
-- description: Per hour, event type and app type - events, unique users, events per user
-- tags: [demo, metrics]
SELECT
    event_hour,
    event_type,
    app_type,
    count(*) AS events,
    count(DISTINCT user_id) AS unique_users,
    round(count(*) / greatest(count(DISTINCT user_id), 1), 2) AS events_per_user
FROM silver.app_events
WHERE is_valid
GROUP BY event_hour, event_type, app_type
