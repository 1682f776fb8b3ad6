-- kind: append
-- keys: [event_id]
-- date_column: event_date
-- description: App events, one row per event_id, typed and standardised, with validity flags
-- tags: [demo]
-- expectations:
--   - {name: has_event_id, not_null: event_id, action: quarantine}
--   - {name: has_event_time, not_null: event_time, action: quarantine}
--   - {name: known_app_type, accepted_values: {column: app_type, values: [ios, android, web]}}
--   - {name: sane_amount, range: {column: amount, min: 0, max: 100000}}
SELECT
    trim(event_id) AS event_id,
    user_id,
    lower(trim(event_type)) AS event_type,
    lower(trim(app_type)) AS app_type,
    page,
    CAST(event_time AS TIMESTAMPTZ) AS event_time,
    CAST(CAST(event_time AS TIMESTAMPTZ) AS DATE) AS event_date,
    date_trunc('hour', CAST(event_time AS TIMESTAMPTZ)) AS event_hour,
    amount,
    list_filter(
        [
            CASE WHEN user_id IS NULL THEN 'missing user_id' END,
            CASE WHEN lower(trim(event_type)) NOT IN
                ('app_open', 'page_view', 'click', 'scroll', 'share', 'purchase')
                THEN 'unknown event_type' END,
            CASE WHEN amount < 0 THEN 'negative amount' END,
            CASE WHEN lower(trim(event_type)) = 'purchase' AND amount IS NULL
                THEN 'purchase without amount' END
        ],
        lambda reason: reason IS NOT NULL
    ) AS invalid_reasons,
    len(invalid_reasons) = 0 AS is_valid,
    _ingested_at
FROM bronze.app_events
