-- keys: [user_id]
-- description: One row per user with a valid app event - first and last seen, sessions, events, activity
-- tags: [demo]
-- column_tags: {user_id: [pii]}
-- expectations:
--   - {name: unique_user, unique: user_id, action: fail}
--   - {name: seen_in_order, expect: first_seen <= last_seen, action: fail}
WITH activity AS (
    SELECT
        user_id,
        min(event_time) AS first_seen,
        max(event_time) AS last_seen,
        count(*) AS events,
        count(DISTINCT event_type) AS distinct_event_types
    FROM silver.app_events
    WHERE is_valid
    GROUP BY user_id
),
sessions AS (
    SELECT user_id, count(*) AS sessions
    FROM silver.clickstream_sessions
    GROUP BY user_id
),
newest AS (SELECT max(event_time) AS data_until FROM silver.app_events WHERE is_valid)
SELECT
    a.user_id,
    a.first_seen,
    a.last_seen,
    coalesce(s.sessions, 0) AS sessions,
    a.events,
    a.distinct_event_types,
    n.data_until - a.last_seen < INTERVAL 24 HOURS AS is_active,
    date_diff('day', CAST(a.last_seen AS DATE), CAST(n.data_until AS DATE))
        AS days_since_last_event
FROM activity a
CROSS JOIN newest n
LEFT JOIN sessions s USING (user_id)
