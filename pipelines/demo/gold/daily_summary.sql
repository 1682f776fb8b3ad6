-- date_column: day
-- keys: [day]
-- description: Per day, over valid app events - users, events, new (first valid event that day) and returning users, events per user; bounce rate of the day's web sessions
-- tags: [demo, metrics]
-- expectations:
--   - {name: new_within_daily, expect: "new_users BETWEEN 0 AND daily_users", action: fail}
--   - {name: returning_is_the_rest, expect: "returning_users = daily_users - new_users AND returning_users >= 0", action: fail}
WITH daily AS (
    SELECT event_date AS day, count(DISTINCT user_id) AS daily_users, count(*) AS events
    FROM silver.app_events
    WHERE is_valid
    GROUP BY event_date
),
first_days AS (
    -- a user is new on the day of their first valid event: the population of daily_users
    SELECT first_day AS day, count(*) AS new_users
    FROM (
        SELECT user_id, min(event_date) AS first_day
        FROM silver.app_events
        WHERE is_valid
        GROUP BY user_id
    )
    GROUP BY first_day
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
