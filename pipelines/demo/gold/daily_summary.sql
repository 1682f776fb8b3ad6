-- date_column: day
-- keys: [day]
-- description: Per day - users, events, new and returning users, events per user, bounce rate
-- tags: [demo, metrics]
WITH daily AS (
    SELECT event_date AS day, count(DISTINCT user_id) AS daily_users, count(*) AS events
    FROM silver.app_events
    WHERE is_valid
    GROUP BY event_date
),
first_days AS (
    SELECT CAST(first_seen AS DATE) AS day, count(*) AS new_users
    FROM silver.users
    GROUP BY 1
),
bounces AS (
    SELECT
        CAST(session_start AS DATE) AS day,
        round(count(*) FILTER (WHERE page_views = 1) / count(*), 4) AS bounce_rate
    FROM silver.clickstream_sessions
    GROUP BY 1
)
SELECT
    d.day,
    d.daily_users,
    d.events,
    coalesce(f.new_users, 0) AS new_users,
    d.daily_users - coalesce(f.new_users, 0) AS returning_users,
    round(d.events / greatest(d.daily_users, 1), 2) AS events_per_user,
    b.bounce_rate
FROM daily d
LEFT JOIN first_days f USING (day)
LEFT JOIN bounces b USING (day)
