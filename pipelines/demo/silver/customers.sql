-- kind: cdc
-- scd: 1
-- keys: [customer_id]
-- sequence_by: sequence
-- delete_when: operation = 'delete'
-- except_columns: [operation, table_name]
-- description: Current state of the source database's customers table (SCD type 1)
-- tags: [demo, cdc]
-- column_tags: {name: [pii], email: [pii]}
-- expectations:
--   - {name: known_operation, accepted_values: {column: operation, values: [insert, update, delete]}, action: quarantine}
SELECT
    primary_key AS customer_id,
    json_extract_string(after, '$.name') AS name,
    json_extract_string(after, '$.email') AS email,
    json_extract_string(after, '$.tier') AS tier,
    operation,
    table_name,
    sequence,
    CAST(changed_at AS TIMESTAMPTZ) AS changed_at
FROM bronze.cdc_changes
WHERE table_name = 'customers'
