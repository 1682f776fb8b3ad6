-- date_column: day
-- keys: [day]
-- description: Share of the day's active users who made a purchase
-- tags: [demo, kpi]
-- expectations:
--   - {name: rate_is_a_share, range: {column: conversion_rate, min: 0, max: 1}, action: fail}
SELECT
    event_date AS day,
    count(DISTINCT user_id) AS active_users,
    count(DISTINCT user_id) FILTER (WHERE event_type = 'purchase') AS buyers,
    round(count(DISTINCT user_id) FILTER (WHERE event_type = 'purchase')
        / count(DISTINCT user_id), 4) AS conversion_rate
FROM silver.app_events
WHERE is_valid
GROUP BY event_date
