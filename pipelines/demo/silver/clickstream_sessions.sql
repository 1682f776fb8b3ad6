-- keys: [session_id]
-- description: One row per clickstream session with its pages, duration and scroll depth
-- tags: [demo]
-- expectations:
--   - {name: one_row_per_session, unique: session_id, action: fail}
--   - {name: has_user, not_null: user_id}
SELECT
    session_id,
    any_value(user_id) AS user_id,
    min(CAST(click_time AS TIMESTAMPTZ)) AS session_start,
    max(CAST(click_time AS TIMESTAMPTZ)) AS session_end,
    string_agg(page, ' > ' ORDER BY CAST(click_time AS TIMESTAMPTZ), click_id) AS page_sequence,
    date_diff('second', min(CAST(click_time AS TIMESTAMPTZ)), max(CAST(click_time AS TIMESTAMPTZ)))
        AS duration_seconds,
    count(*) AS page_views,
    round(avg(scroll_depth), 1) AS avg_scroll_depth,
    any_value(user_agent) AS user_agent
FROM bronze.clickstream
GROUP BY session_id
