-- date_column: day
-- keys: [day, source]
-- description: User events per day and source (web, mobile)
-- tags: [demo, kpi]
SELECT event_date AS day, source, count(*) AS events, count(DISTINCT user_id) AS users
FROM silver.user_events
GROUP BY event_date, source
