-- kind: append
-- keys: [event_id]
-- date_column: event_date
-- description: User events of the real-time path, de-duplicated, typed and standardised
-- tags: [demo]
-- expectations:
--   - {name: has_event_id, not_null: event_id, action: quarantine}
--   - {name: known_event_type, accepted_values: {column: event_type, values: [login, click, purchase, logout]}, action: drop}
--   - {name: known_source, accepted_values: {column: source, values: [web, mobile]}}
SELECT
    trim(event_id) AS event_id,
    user_id,
    lower(trim(event_type)) AS event_type,
    page,
    lower(trim(source)) AS source,
    amount,
    CAST(event_time AS TIMESTAMPTZ) AS event_time,
    CAST(CAST(event_time AS TIMESTAMPTZ) AS DATE) AS event_date
FROM bronze.user_events
