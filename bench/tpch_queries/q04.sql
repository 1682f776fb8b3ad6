-- TPC-H Q4: Order Priority Checking. Validation parameters: DATE = 1993-07-01.
SELECT
    o_orderpriority,
    count(*) AS order_count
FROM silver.orders
WHERE o_orderdate >= DATE '1993-07-01'
    AND o_orderdate < DATE '1993-07-01' + INTERVAL '3' MONTH
    AND EXISTS (
        SELECT *
        FROM silver.lineitem
        WHERE l_orderkey = o_orderkey
            AND l_commitdate < l_receiptdate
    )
GROUP BY o_orderpriority
ORDER BY o_orderpriority;
