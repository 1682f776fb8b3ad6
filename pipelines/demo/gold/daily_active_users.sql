-- date_column: day
-- keys: [day]
-- description: Distinct users with at least one valid app event, per day
-- tags: [demo, kpi]
SELECT event_date AS day, count(DISTINCT user_id) AS active_users
FROM silver.app_events
WHERE is_valid
GROUP BY event_date
