-- TPC-H Q11: Important Stock Identification. Validation parameters: NATION = GERMANY,
-- FRACTION = 0.0001 (the spec scales it as 0.0001 / SF; this is the SF1 value).
-- ps_partkey is appended to the ORDER BY so ties cannot reorder rows.
SELECT
    ps_partkey,
    sum(ps_supplycost * ps_availqty) AS value
FROM silver.partsupp, silver.supplier, silver.nation
WHERE ps_suppkey = s_suppkey
    AND s_nationkey = n_nationkey
    AND n_name = 'GERMANY'
GROUP BY ps_partkey
HAVING sum(ps_supplycost * ps_availqty) > (
    SELECT sum(ps_supplycost * ps_availqty) * 0.0001
    FROM silver.partsupp, silver.supplier, silver.nation
    WHERE ps_suppkey = s_suppkey
        AND s_nationkey = n_nationkey
        AND n_name = 'GERMANY'
)
ORDER BY value DESC, ps_partkey;
