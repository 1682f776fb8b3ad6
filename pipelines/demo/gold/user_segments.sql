-- keys: [user_id]
-- description: Engagement score, segment (VIP, Active, Regular, Inactive) and churn risk per user
-- tags: [demo, segments]
-- column_tags: {user_id: [pii]}
-- expectations:
--   - {name: known_segment, accepted_values: {column: segment, values: [VIP, Active, Regular, Inactive]}, action: fail}
--   - {name: risk_in_range, range: {column: churn_risk, min: 0, max: 1}, action: fail}
WITH scored AS (
    SELECT
        *,
        round(events + 2 * sessions + 5 * distinct_event_types, 1) AS engagement_score
    FROM silver.users
)
SELECT
    user_id,
    engagement_score,
    CASE
        WHEN NOT is_active THEN 'Inactive'
        WHEN engagement_score >= 60 THEN 'VIP'
        WHEN engagement_score >= 25 THEN 'Active'
        ELSE 'Regular'
    END AS segment,
    round(least(1.0, 0.25 * days_since_last_event + CASE WHEN is_active THEN 0 ELSE 0.4 END
        + CASE WHEN events < 3 THEN 0.2 ELSE 0 END), 2) AS churn_risk,
    CASE
        WHEN churn_risk >= 0.6 THEN 'high'
        WHEN churn_risk >= 0.3 THEN 'medium'
        ELSE 'low'
    END AS churn_risk_level,
    events,
    sessions,
    last_seen
FROM scored
