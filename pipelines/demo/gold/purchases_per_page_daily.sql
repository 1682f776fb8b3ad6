-- date_column: day
-- keys: [day, page]
-- description: Purchases and revenue per day and page
-- tags: [demo, kpi]
SELECT event_date AS day, page, count(*) AS purchases, round(sum(amount), 2) AS revenue
FROM silver.app_events
WHERE is_valid AND event_type = 'purchase'
GROUP BY event_date, page
