-- TPC-H Q17: Small-Quantity-Order Revenue. Validation parameters: BRAND = Brand#23,
-- CONTAINER = MED BOX.
SELECT
    sum(l_extendedprice) / 7.0 AS avg_yearly
FROM silver.lineitem, silver.part
WHERE p_partkey = l_partkey
    AND p_brand = 'Brand#23'
    AND p_container = 'MED BOX'
    AND l_quantity < (
        SELECT 0.2 * avg(l_quantity)
        FROM silver.lineitem
        WHERE l_partkey = p_partkey
    );
