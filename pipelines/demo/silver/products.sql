-- kind: cdc
-- scd: 1
-- keys: [product_id]
-- sequence_by: sequence
-- delete_when: operation = 'delete'
-- except_columns: [operation, table_name]
-- description: Current state of the source database's products table (SCD type 1)
-- tags: [demo, cdc]
-- expectations:
--   - {name: known_operation, accepted_values: {column: operation, values: [insert, update, delete]}, action: quarantine}
SELECT
    primary_key AS product_id,
    json_extract_string(after, '$.name') AS name,
    CAST(json_extract(after, '$.price') AS DOUBLE) AS price,
    CAST(json_extract(after, '$.in_stock') AS BOOLEAN) AS in_stock,
    operation,
    table_name,
    sequence,
    CAST(changed_at AS TIMESTAMPTZ) AS changed_at
FROM bronze.cdc_changes
WHERE table_name = 'products'
