from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

import pytest

from lakehouse import Lakehouse
from lakehouse.errors import InvalidNameError, TableNotFoundError
from lakehouse.lineage.columns import ColumnEdge, column_lineage, definition_edges, table_inputs
from lakehouse.lineage.graph import (
    downstream,
    impact,
    lineage_json,
    lineage_report,
    render_tree,
    upstream,
)
from lakehouse.lineage.openlineage import namespace, openlineage_events, write_openlineage
from tests.postgres import postgres_server

SCHEMAS = {
    "bronze.events": ["event_id", "user_id", "ts", "kind", "amount", "payload", "_ingested_at"],
    "silver.users": ["id", "name", "email", "country", "signup_date"],
}

DAILY = """
WITH recent AS (
    SELECT * EXCLUDE (_ingested_at, payload),
           json_extract_string(payload, '$.plan') AS plan
    FROM bronze.events
    WHERE ts >= DATE '2026-01-01'
),
spend AS (
    SELECT user_id, count(*) AS purchases, sum(amount) AS total, max(plan) AS plan
    FROM recent
    WHERE kind = 'purchase'
    GROUP BY user_id
)
SELECT
    u.id AS user_id,
    u.name AS customer,
    lower(u.email) AS email,
    s.purchases,
    s.total,
    CASE WHEN s.total > 1000 THEN 'gold' WHEN s.total > 100 THEN 'silver' ELSE 'basic' END
        AS tier,
    rank() OVER (PARTITION BY u.country ORDER BY s.total DESC) AS country_rank,
    s.plan
FROM silver.users AS u
JOIN spend AS s ON s.user_id = u.id
QUALIFY country_rank <= 100
"""


def edges_of(edges: list[ColumnEdge], target_column: str | None) -> set[tuple[str, str, str]]:
    return {
        (e.source_table, e.source_column, e.transform)
        for e in edges
        if e.target_column == target_column
    }


# -- column lineage ----------------------------------------------------------------------------
def test_column_lineage_through_ctes_joins_aggregates_windows_case_and_json():
    edges = column_lineage(DAILY, "gold.customer_daily", SCHEMAS)
    assert all(e.target_table == "gold.customer_daily" for e in edges)

    # u.id, and the column it is joined on (s.user_id = u.id): the same values
    assert edges_of(edges, "user_id") == {
        ("silver.users", "id", "identity"),
        ("bronze.events", "user_id", "join_key"),
    }
    assert edges_of(edges, "customer") == {("silver.users", "name", "identity")}
    assert edges_of(edges, "email") == {("silver.users", "email", "carried")}  # lower()
    assert edges_of(edges, "purchases") == set()  # count(*) reads no column
    assert edges_of(edges, "total") == {("bronze.events", "amount", "aggregation")}
    assert edges_of(edges, "tier") == {("bronze.events", "amount", "aggregation")}
    assert edges_of(edges, "country_rank") == {
        ("silver.users", "country", "expression"),
        ("bronze.events", "amount", "aggregation"),
    }
    # json_extract_string on a column (in a CTE), then max() picks one of those values
    assert edges_of(edges, "plan") == {("bronze.events", "payload", "expression")}

    indirect = edges_of(edges, None)
    assert ("bronze.events", "ts", "filter") in indirect
    assert ("bronze.events", "kind", "filter") in indirect
    assert ("bronze.events", "user_id", "group_by") in indirect
    assert ("bronze.events", "user_id", "join") in indirect
    assert ("silver.users", "id", "join") in indirect
    # QUALIFY on the window alias filters on what the window reads
    assert ("silver.users", "country", "filter") in indirect
    # excluded and unused columns do not appear
    sources = {(e.source_table, e.source_column) for e in edges}
    assert ("bronze.events", "_ingested_at") not in sources
    assert ("bronze.events", "event_id") not in sources
    assert ("silver.users", "signup_date") not in sources
    assert all(not e.direct for e in edges if e.target_column is None)
    assert len(edges) == len(set(edges))


def test_select_star_is_expanded_with_schemas():
    sql = "SELECT * EXCLUDE (payload, _ingested_at) FROM bronze.events WHERE amount > 0"
    edges = column_lineage(sql, "silver.events", SCHEMAS)
    direct = {(e.source_column, e.target_column, e.transform) for e in edges if e.direct}
    assert direct == {(c, c, "identity") for c in ("event_id", "user_id", "ts", "kind", "amount")}
    assert [e.to_dict() for e in edges if not e.direct] == [
        dict(
            source_table="bronze.events",
            source_column="amount",
            target_table="silver.events",
            target_column=None,
            transform="filter",
        )
    ]

    renamed = column_lineage(
        "WITH x AS (SELECT id AS uid, name FROM silver.users) SELECT x.* FROM x",
        "gold.people",
        SCHEMAS,
    )
    assert {(e.source_column, e.target_column, e.transform) for e in renamed} == {
        ("id", "uid", "identity"),
        ("name", "name", "identity"),
    }


def test_unions_subqueries_unnest_and_unqualified_columns():
    union = column_lineage(
        "SELECT id, name FROM silver.users UNION ALL "
        "SELECT user_id, CAST(kind AS VARCHAR) FROM bronze.events",
        "silver.names",
        SCHEMAS,
    )
    assert edges_of(union, "id") == {
        ("silver.users", "id", "identity"),
        ("bronze.events", "user_id", "identity"),
    }
    assert edges_of(union, "name") == {
        ("silver.users", "name", "identity"),
        ("bronze.events", "kind", "carried"),  # a cast
    }

    nested = column_lineage(
        """
        SELECT id,
               (SELECT max(e.amount) FROM bronze.events e WHERE e.user_id = u.id) AS top,
               tag
        FROM (SELECT id, country FROM silver.users) AS u, unnest(string_split(u.country, ','))
            AS t(tag)
        WHERE id NOT IN (SELECT user_id FROM silver.blocked)
        """,
        "gold.x",
        SCHEMAS,
    )
    assert edges_of(nested, "id") == {("silver.users", "id", "identity")}
    assert edges_of(nested, "top") == {("bronze.events", "amount", "expression")}
    assert edges_of(nested, "tag") == {("silver.users", "country", "expression")}
    # silver.blocked has no known schema: its column is still followed
    assert ("silver.blocked", "user_id", "filter") in edges_of(nested, None)


def test_unknown_tables_and_columns_and_bad_sql_do_not_crash():
    # no schemas at all: explicit columns are still found, * cannot be expanded
    edges = column_lineage("SELECT a, b + 1 AS c FROM silver.t", "gold.t", {})
    assert {(e.source_column, e.target_column, e.transform) for e in edges} == {
        ("a", "a", "identity"),
        ("b", "c", "expression"),
    }
    assert column_lineage("SELECT * FROM silver.unknown", "gold.t", SCHEMAS) == []
    # a column the schema does not have is dropped, the rest kept
    edges = column_lineage("SELECT u.id, u.nope FROM silver.users u", "gold.t", SCHEMAS)
    assert edges_of(edges, "id") == {("silver.users", "id", "identity")}
    assert edges_of(edges, "nope") == set()
    assert column_lineage("SELEKT * FROM (", "gold.t", SCHEMAS) == []
    assert column_lineage("", "gold.t", SCHEMAS) == []
    assert table_inputs("SELEKT * FROM silver.users JOIN bronze.events (") == [
        "silver.users",
        "bronze.events",
    ]
    assert table_inputs("") == []


def test_lateral_and_odd_queries():
    lateral = column_lineage(
        "SELECT id, x FROM silver.users, "
        "LATERAL (SELECT amount AS x FROM bronze.events WHERE user_id = id)",
        "gold.t",
        SCHEMAS,
    )
    assert edges_of(lateral, "x") == {("bronze.events", "amount", "identity")}
    assert ("bronze.events", "user_id", "filter") in edges_of(lateral, None)
    odd = [
        "SELECT * FROM silver.users PIVOT (count(*) FOR country IN ('a', 'b'))",
        "SELECT * FROM (VALUES (1, 2)) t(a, b)",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) "
        "SELECT n FROM r",
        "SELECT COLUMNS('^n.*') FROM silver.users",
        "SELECT country, count(*) FROM silver.users GROUP BY ALL ORDER BY ALL",
        "SELECT * FROM silver.users u NATURAL JOIN silver.users v",
        "SELECT * FROM silver.users SEMI JOIN bronze.events ON user_id = id",
        "SELECT * FROM read_parquet('files/*.parquet')",
        "UPDATE silver.users SET name = 'x'",
        "SELECT $1",
        "FROM silver.users",
    ]
    for sql in odd:
        for edge in column_lineage(sql, "gold.t", SCHEMAS):
            assert edge.source_table in ("silver.users", "bronze.events")
        table_inputs(sql)
    assert edges_of(column_lineage("FROM silver.users", "gold.t", SCHEMAS), "id") == {
        ("silver.users", "id", "identity")
    }


def test_table_inputs_skip_ctes_and_find_nested_and_time_travel():
    assert table_inputs(DAILY) == ["bronze.events", "silver.users"]
    sql = """
        WITH users AS (SELECT * FROM silver.users VERSION AS OF 3)
        SELECT * FROM users
        WHERE id IN (SELECT user_id FROM bronze.events)
          AND id NOT IN (SELECT id FROM read_parquet('x.parquet'))
    """
    assert table_inputs(sql) == ["silver.users", "bronze.events"]
    edges = column_lineage("SELECT id FROM silver.users VERSION AS OF 3", "gold.t", SCHEMAS)
    assert edges_of(edges, "id") == {("silver.users", "id", "identity")}


def test_case_of_names_follows_the_schemas():
    edges = column_lineage(
        "SELECT Id AS UserId, NAME FROM silver.people",
        "gold.people",
        {"silver.people": ["Id", "Name"], "gold.people": ["UserId", "Name"]},
    )
    assert {(e.source_column, e.target_column) for e in edges} == {
        ("Id", "UserId"),
        ("Name", "Name"),
    }


def test_a_twenty_dataset_pipeline_is_analysed_quickly():
    schemas = dict(SCHEMAS)
    queries = []
    for i in range(20):
        source = "silver.users" if i == 0 else f"silver.step_{i - 1}"
        queries.append(
            (
                f"silver.step_{i}",
                f"""
                WITH base AS (SELECT * FROM {source}),
                     ev AS (SELECT user_id, sum(amount) AS total FROM bronze.events
                            WHERE kind = 'k{i}' GROUP BY user_id)
                SELECT b.*, coalesce(ev.total, 0) AS total_{i},
                       row_number() OVER (PARTITION BY b.id ORDER BY ev.total) AS rn_{i}
                FROM base b LEFT JOIN ev ON ev.user_id = b.id
                QUALIFY rn_{i} = 1
                """,
            )
        )
    column_lineage(queries[0][1], queries[0][0], schemas)  # parser warm-up
    started = time.perf_counter()
    for target, sql in queries:
        edges = column_lineage(sql, target, schemas)
        table_inputs(sql)
        schemas[target] = list(dict.fromkeys(e.target_column for e in edges if e.target_column))
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"lineage of 20 datasets took {elapsed:.2f}s"
    last = column_lineage(queries[-1][1], queries[-1][0], schemas)
    assert edges_of(last, "name") == {("silver.step_18", "name", "identity")}
    assert edges_of(last, "total_19") == {("bronze.events", "amount", "aggregation")}
    assert len(schemas["silver.step_19"]) == len(SCHEMAS["silver.users"]) + 2 * 20
    assert ("silver.step_18", "total_0", "identity") in edges_of(last, "total_0")


# -- catalog storage ---------------------------------------------------------------------------
def sql_edges(sql: str, target: str, schemas: dict[str, list[str]]) -> list[dict]:
    return definition_edges(target, sql, schemas)


def test_definition_edges_for_sql_and_python_datasets():
    edges = definition_edges("gold.t", "SELECT u.id FROM silver.users u", SCHEMAS, ["bronze.x"])
    assert edges == [
        dict(source_table="silver.users", source_column=None, target_column=None, transform=None),
        dict(source_table="bronze.x", source_column=None, target_column=None, transform=None),
        dict(
            source_table="silver.users",
            source_column="id",
            target_table="gold.t",
            target_column="id",
            transform="identity",
        ),
    ]
    assert definition_edges("gold.t", inputs=["silver.a", "silver.b", "silver.a"]) == [
        dict(source_table=n, source_column=None, target_column=None, transform=None)
        for n in ("silver.a", "silver.b")
    ]


def test_record_and_read_back(lh):
    job = "pipeline demo / gold.customer_daily"
    lh.catalog.record_lineage(
        job,
        "gold.customer_daily",
        sql_edges(DAILY, "gold.customer_daily", SCHEMAS),
        operation="materialized_view",
    )
    rows = lh.catalog.lineage_edges()
    assert rows and {r["job"] for r in rows} == {job}
    assert {r["target_table"] for r in rows} == {"gold.customer_daily"}
    assert {r["operation"] for r in rows} == {"materialized_view"}
    assert all(r["run_id"] is None for r in rows)
    assert set(rows[0]) == {
        "id",
        "source_table",
        "source_column",
        "target_table",
        "target_column",
        "job",
        "operation",
        "transform",
        "run_id",
        "recorded_at",
    }
    assert datetime.fromisoformat(rows[0]["recorded_at"]).tzinfo is not None
    table_level = [r for r in rows if r["source_column"] is None]
    assert {r["source_table"] for r in table_level} == {"bronze.events", "silver.users"}
    assert all(r["target_column"] is None and r["transform"] is None for r in table_level)
    assert {
        "source_table": "silver.users",
        "source_column": "id",
        "target_column": "user_id",
        "transform": "identity",
    }.items() <= next(r for r in rows if r["target_column"] == "user_id").items()

    # filtering by table: as source or as target
    assert lh.catalog.lineage_edges("gold.customer_daily") == rows
    users = lh.catalog.lineage_edges("silver.users")
    assert users and all(r["source_table"] == "silver.users" for r in users)
    assert lh.catalog.lineage_edges("gold.nothing") == []


def test_rerecording_replaces_definition_and_keeps_only_the_latest_run(lh):
    job, target = "pipeline demo / silver.orders", "silver.orders"
    cat = lh.catalog
    cat.record_lineage(
        job,
        target,
        [
            dict(source_table="bronze.orders"),
            dict(
                source_table="bronze.orders",
                source_column="amount",
                target_column="amount",
                transform="identity",
            ),
        ],
        operation="materialized_view",
    )
    cat.record_lineage(
        "pipeline demo / silver.users",
        "silver.users",
        [dict(source_table="bronze.users")],
        operation="cdc",
    )
    # definition changed: the source and the column edges are replaced
    cat.record_lineage(
        job,
        target,
        [
            dict(source_table="bronze.orders_v2"),
            dict(
                source_table="bronze.orders_v2",
                source_column="amount_cents",
                target_column="amount",
                transform="expression",
            ),
        ],
        operation="append",
    )
    rows = [r for r in cat.lineage_edges() if r["job"] == job]
    assert {r["source_table"] for r in rows} == {"bronze.orders_v2"}
    assert {r["operation"] for r in rows} == {"append"}
    assert {(r["source_column"], r["transform"]) for r in rows} == {
        (None, None),
        ("amount_cents", "expression"),
    }
    # another job's edges are left alone
    assert [r["operation"] for r in cat.lineage_edges("silver.users")] == ["cdc"]

    # runs: only the latest run's edges are kept, next to the definition
    for n in range(3):
        cat.record_lineage(
            job,
            target,
            [dict(source_table=f"bronze.batch_{n}", operation="files")],
            run_id=f"run-{n}",
        )
    rows = [r for r in cat.lineage_edges() if r["job"] == job]
    runs = [r for r in rows if r["run_id"] is not None]
    assert [(r["run_id"], r["source_table"], r["operation"]) for r in runs] == [
        ("run-2", "bronze.batch_2", "files")
    ]
    assert {r["source_table"] for r in rows if r["run_id"] is None} == {"bronze.orders_v2"}

    # re-recording the definition leaves the run's edges
    cat.record_lineage(job, target, [dict(source_table="bronze.orders_v3")], operation="append")
    rows = [r for r in cat.lineage_edges() if r["job"] == job]
    assert {(r["source_table"], r["run_id"]) for r in rows} == {
        ("bronze.orders_v3", None),
        ("bronze.batch_2", "run-2"),
    }
    # an empty definition clears it; duplicates are stored once
    cat.record_lineage(job, target, [])
    assert [r["run_id"] for r in cat.lineage_edges() if r["job"] == job] == ["run-2"]
    cat.record_lineage(job, target, [dict(source_table="bronze.a")] * 3)
    assert len([r for r in cat.lineage_edges("bronze.a")]) == 1
    cat.forget_lineage(job)
    assert [r for r in cat.lineage_edges() if r["job"] == job] == []


def test_lineage_in_a_postgresql_catalog(tmp_path):
    with postgres_server() as url:
        lh = Lakehouse(tmp_path / "w", catalog_url=url)
        job = "pipeline demo / gold.customer_daily"
        edges = sql_edges(DAILY, "gold.customer_daily", SCHEMAS)
        lh.catalog.record_lineage(job, "gold.customer_daily", edges, operation="append")
        lh.catalog.record_lineage(job, "gold.customer_daily", edges, operation="append")
        lh.catalog.record_lineage(
            job, "gold.customer_daily", [dict(source_table="bronze.x")], run_id="r1"
        )
        lh.catalog.record_lineage(
            job, "gold.customer_daily", [dict(source_table="bronze.y")], run_id="r2"
        )
        rows = Lakehouse(tmp_path / "w", catalog_url=url).catalog.lineage_edges()
        assert len([r for r in rows if r["run_id"] is None]) == len(
            {tuple(sorted(e.items())) for e in edges}
        )
        assert [r["source_table"] for r in rows if r["run_id"]] == ["bronze.y"]
        assert set(upstream(lh, "gold.customer_daily").nodes) == {
            "gold.customer_daily",
            "bronze.events",
            "silver.users",
            "bronze.y",
        }
        lh.catalog.engine.dispose()


def test_an_edge_without_a_source_is_refused(lh):
    from lakehouse.errors import CatalogError

    with pytest.raises(CatalogError):
        lh.catalog.record_lineage("j", "silver.x", [dict(source_column="a")])


# -- the graph ---------------------------------------------------------------------------------
def build_chain(lh) -> None:
    """bronze.users, bronze.orders -> silver.users, silver.orders -> gold.revenue (fan-in)
    -> system.report (a Python dataset, table level only)."""
    lh.write("bronze.users", [{"id": 1, "name": "ann", "email": "A@X", "payload": "{}"}])
    lh.write("bronze.orders", [{"id": 10, "user_id": 1, "amount": 5.0, "status": "paid"}])
    lh.write("silver.users", [{"id": 1, "name": "ann", "email": "a@x", "plan": "pro"}])
    lh.write("silver.orders", [{"id": 10, "user_id": 1, "amount": 5.0}])
    lh.write("gold.revenue", [{"plan": "pro", "revenue": 5.0, "orders": 1}])
    schemas = {
        name: [c["name"] for c in lh.catalog.get(name).columns] for name in lh.catalog.names()
    }
    datasets = {
        "silver.users": (
            "cdc",
            "SELECT id, name, lower(email) AS email, "
            "json_extract_string(payload, '$.plan') AS plan FROM bronze.users",
        ),
        "silver.orders": (
            "materialized_view",
            "SELECT id, user_id, amount FROM bronze.orders WHERE status = 'paid'",
        ),
        "gold.revenue": (
            "materialized_view",
            "SELECT u.plan, sum(o.amount) AS revenue, count(o.id) AS orders "
            "FROM silver.orders o JOIN silver.users u ON u.id = o.user_id GROUP BY u.plan",
        ),
    }
    for target, (operation, sql) in datasets.items():
        lh.catalog.record_lineage(
            f"pipeline demo / {target}",
            target,
            sql_edges(sql, target, schemas),
            operation=operation,
        )
    lh.catalog.record_lineage(
        "pipeline demo / system.report",
        "system.report",
        [dict(source_table="gold.revenue")],
        operation="python",
    )


def test_upstream_and_downstream_over_a_chain_with_a_fan_in(lh):
    build_chain(lh)
    up = upstream(lh, "system.report")
    assert {n: (v.depth, v.layer) for n, v in up.nodes.items()} == {
        "system.report": (0, "system"),
        "gold.revenue": (1, "gold"),
        "silver.users": (2, "silver"),
        "silver.orders": (2, "silver"),
        "bronze.users": (3, "bronze"),
        "bronze.orders": (3, "bronze"),
    }
    assert up.nodes["gold.revenue"].registered and not up.nodes["system.report"].registered
    fan_in = {e.source for e in up.edges if e.target == "gold.revenue"}
    assert fan_in == {"silver.users", "silver.orders"}
    revenue = next(e for e in up.edges if e.source == "silver.orders")
    assert revenue.job == "pipeline demo / gold.revenue"
    assert revenue.operation == "materialized_view"
    assert {
        "source_column": "amount",
        "target_column": "revenue",
        "transform": "aggregation",
    } in revenue.columns
    report = next(e for e in up.edges if e.target == "system.report")
    assert report.columns == [] and report.operation == "python"

    assert set(upstream(lh.catalog, "system.report", depth=2).nodes) == {
        "system.report",
        "gold.revenue",
        "silver.users",
        "silver.orders",
    }
    down = downstream(lh, "bronze.orders")
    assert {n: v.depth for n, v in down.nodes.items()} == {
        "bronze.orders": 0,
        "silver.orders": 1,
        "gold.revenue": 2,
        "system.report": 3,
    }
    assert downstream(lh, "system.report").edges == []
    as_dict = down.to_dict()
    assert as_dict["direction"] == "downstream"
    assert [n["name"] for n in as_dict["nodes"]][0] == "bronze.orders"
    json.dumps(as_dict)

    tree = render_tree(up)
    lines = tree.splitlines()
    assert lines[0] == "system.report (not built)"
    assert lines[1].startswith("└── gold.revenue  <- pipeline demo / system.report [python]")
    assert any(line.startswith("    ├── silver.orders") for line in lines)
    assert any("bronze.users" in line and "[cdc]" in line for line in lines)
    with_columns = render_tree(up, columns=True)
    assert "amount -> revenue (aggregation)" in with_columns
    assert "user_id -> rows (join)" in with_columns
    assert "amount -> revenue" not in tree


def test_impact_of_a_column_and_of_a_table(lh):
    build_chain(lh)
    email = impact(lh, "bronze.users", "email")
    assert email["affected"] == [
        dict(
            table="silver.users",
            layer="silver",
            depth=1,
            all_columns=False,
            columns=["email"],
            jobs=["pipeline demo / silver.users"],
        )
    ]
    payload = impact(lh.catalog, "bronze.users", "payload")
    assert [(a["table"], a["columns"], a["all_columns"]) for a in payload["affected"]] == [
        ("silver.users", ["plan"], False),
        ("gold.revenue", ["orders", "plan", "revenue"], True),  # plan groups the rows
        ("system.report", [], True),  # table-level lineage only
    ]
    amount = impact(lh, "bronze.orders", "amount")
    by_table = {a["table"]: a for a in amount["affected"]}
    assert by_table["silver.orders"]["columns"] == ["amount"]
    assert not by_table["silver.orders"]["all_columns"]
    assert by_table["gold.revenue"]["columns"] == ["revenue"]
    assert not by_table["gold.revenue"]["all_columns"]
    assert by_table["system.report"]["all_columns"]
    # status only filters: every column of silver.orders and onwards
    status = impact(lh, "bronze.orders", "status")
    assert status["affected"][0]["all_columns"]
    assert status["affected"][0]["columns"] == ["amount", "id", "user_id"]
    assert [a["all_columns"] for a in status["affected"]] == [True, True, True]
    whole = impact(lh, "bronze.orders")
    assert [a["table"] for a in whole["affected"]] == [
        "silver.orders",
        "gold.revenue",
        "system.report",
    ]
    assert [a["depth"] for a in whole["affected"]] == [1, 2, 3]
    assert impact(lh, "bronze.users", "unused")["affected"] == []
    assert impact(lh, "system.report")["affected"] == []


def test_a_table_feeding_itself_is_walked_once(lh):
    lh.catalog.record_lineage(
        "pipeline p / silver.sessions",
        "silver.sessions",
        [
            dict(source_table="bronze.clicks"),
            dict(source_table="silver.sessions"),
            dict(
                source_table="silver.sessions",
                source_column="n",
                target_column="n",
                transform="aggregation",
            ),
        ],
        operation="append",
    )
    up = upstream(lh, "silver.sessions")
    assert set(up.nodes) == {"silver.sessions", "bronze.clicks"}
    tree = render_tree(up)
    assert len(tree.splitlines()) == 3
    assert tree.splitlines()[-1].startswith("└── silver.sessions")
    assert tree.endswith("(see above)")
    assert impact(lh, "silver.sessions", "n")["affected"] == []
    assert [a["table"] for a in impact(lh, "bronze.clicks")["affected"]] == ["silver.sessions"]


def test_lineage_report_and_json(lh):
    build_chain(lh)
    text = lineage_report(lh, "gold.revenue")
    assert text.startswith("upstream of gold.revenue:\ngold.revenue\n")
    assert "downstream of gold.revenue:" in text
    assert "system.report (not built)" in text
    up_only = lineage_report(lh, "silver.orders", direction="upstream", columns=True)
    assert "downstream" not in up_only
    assert "status -> rows (filter)" in up_only
    assert lineage_report(lh, "bronze.users", "upstream") == (
        "upstream of bronze.users: none recorded"
    )

    data = lineage_json(lh, "gold.revenue", columns=True)
    assert data["table"] == "gold.revenue" and data["layer"] == "gold"
    assert {n["name"] for n in data["upstream"]["nodes"]} >= {"bronze.orders", "silver.users"}
    assert {n["name"] for n in data["downstream"]["nodes"]} == {"gold.revenue", "system.report"}
    assert any(e["columns"] for e in data["upstream"]["edges"])
    assert "columns" not in lineage_json(lh, "gold.revenue")["upstream"]["edges"][0]
    assert set(lineage_json(lh, "gold.revenue", "downstream")) == {
        "table",
        "layer",
        "downstream",
    }
    json.dumps(data)

    with pytest.raises(TableNotFoundError) as err:
        lineage_report(lh, "gold.revenu")
    assert "gold.revenue" in err.value.suggestions
    with pytest.raises(InvalidNameError):
        lineage_report(lh, "revenue")
    # a dataset defined but not built yet has lineage all the same
    assert "gold.revenue" in lineage_report(lh, "system.report")


# -- OpenLineage -------------------------------------------------------------------------------
def check_event(event: dict) -> None:
    assert event["eventType"] == "COMPLETE"
    assert datetime.fromisoformat(event["eventTime"]).tzinfo is not None
    uuid.UUID(event["run"]["runId"])
    assert event["producer"].startswith("https://")
    assert event["schemaURL"].startswith("https://openlineage.io/spec/")
    assert event["job"]["namespace"] and event["job"]["name"]
    for dataset in event["inputs"] + event["outputs"]:
        assert dataset["namespace"].startswith("lakehouse://") and dataset["name"]
    assert len(event["outputs"]) == 1


def test_openlineage_events(lh, tmp_path):
    build_chain(lh)
    events = openlineage_events(lh)
    assert [e["job"]["name"] for e in events] == [
        "pipeline demo / gold.revenue",
        "pipeline demo / silver.orders",
        "pipeline demo / silver.users",
        "pipeline demo / system.report",
    ]
    for event in events:
        check_event(event)
        json.dumps(event)
    ns = namespace(lh)
    assert ns == f"lakehouse://{lh.root}"

    revenue = events[0]
    assert revenue["job"]["namespace"] == ns
    assert revenue["job"]["facets"]["jobType"]["jobType"] == "MATERIALIZED_VIEW"
    assert revenue["job"]["facets"]["jobType"]["processingType"] == "BATCH"
    assert {d["name"] for d in revenue["inputs"]} == {"silver.orders", "silver.users"}
    output = revenue["outputs"][0]
    assert output["name"] == "gold.revenue"
    schema = output["facets"]["schema"]
    assert [f["name"] for f in schema["fields"]] == ["plan", "revenue", "orders"]
    assert schema["fields"][1]["type"]
    assert schema["_producer"] and schema["_schemaURL"].endswith("SchemaDatasetFacet")
    inputs_schema = {d["name"]: d["facets"]["schema"]["fields"] for d in revenue["inputs"]}
    assert "amount" in {f["name"] for f in inputs_schema["silver.orders"]}
    assert output["facets"]["storage"]["storageLayer"] == "delta"

    lineage = output["facets"]["columnLineage"]
    assert lineage["_schemaURL"].endswith("ColumnLineageDatasetFacet")
    assert set(lineage["fields"]) == {"plan", "revenue", "orders"}
    (revenue_input,) = lineage["fields"]["revenue"]["inputFields"]
    assert revenue_input == {
        "namespace": ns,
        "name": "silver.orders",
        "field": "amount",
        "transformations": [
            {"type": "DIRECT", "subtype": "AGGREGATION", "description": "aggregation"}
        ],
    }
    plan = lineage["fields"]["plan"]["inputFields"][0]
    assert plan["transformations"][0]["subtype"] == "IDENTITY"
    indirect = {
        (f["name"], f["field"], f["transformations"][0]["subtype"]) for f in lineage["dataset"]
    }
    assert ("silver.users", "plan", "GROUP_BY") in indirect
    assert ("silver.orders", "user_id", "JOIN") in indirect
    assert all(f["transformations"][0]["type"] == "INDIRECT" for f in lineage["dataset"])

    report = events[-1]
    assert report["outputs"][0]["name"] == "system.report"
    assert "columnLineage" not in report["outputs"][0].get("facets", {})
    assert [d["name"] for d in report["inputs"]] == ["gold.revenue"]
    # run ids are stable between exports of the same recorded lineage
    assert [e["run"]["runId"] for e in openlineage_events(lh)] == [
        e["run"]["runId"] for e in events
    ]

    # filtered to a table: jobs writing or reading it
    names = [e["job"]["name"] for e in openlineage_events(lh, "silver.users")]
    assert names == ["pipeline demo / gold.revenue", "pipeline demo / silver.users"]

    # a run's observed edges
    run = str(uuid.uuid4())
    lh.catalog.record_lineage(
        "pipeline demo / realtime.clicks",
        "realtime.clicks",
        [
            dict(
                source_table="bronze.users",
                source_column="id",
                target_column="user_id",
                transform="identity",
            )
        ],
        run_id=run,
        operation="append",
    )
    (observed,) = openlineage_events(lh, run_id=run)
    check_event(observed)
    assert observed["run"]["runId"] == run
    assert observed["job"]["facets"]["jobType"]["processingType"] == "STREAMING"
    assert observed["outputs"][0]["facets"]["columnLineage"]["fields"]["user_id"]

    path = tmp_path / "out" / "lineage.jsonl"
    assert write_openlineage(lh, path) == 5
    lines = path.read_text().splitlines()
    assert len(lines) == 5
    for line in lines:
        check_event(json.loads(line))
    assert write_openlineage(lh, path, table="system.report") == 1
    assert json.loads(path.read_text())["job"]["name"] == "pipeline demo / system.report"


def test_what_carries_a_value_and_what_does_not():
    """The edges tags follow: casts, case changes and value-picking aggregates carry a value
    (``carried``), equality joins make the other side's column a ``join_key`` source; counts
    and other expressions do not carry it."""
    schemas = {
        "silver.users": ["id", "email", "name"],
        "silver.orders": ["order_id", "customer", "buyer_email", "amount"],
    }
    edges = column_lineage(
        """
        SELECT o.customer AS who,
               CAST(u.id AS VARCHAR) AS id_text,
               u.id::BIGINT AS id_big,
               upper(trim(u.name)) AS shout,
               any_value(u.email) AS some_email,
               min(u.email) AS first_email,
               arg_max(u.name, o.amount) AS top_name,
               count(DISTINCT u.email) AS emails,
               length(u.email) AS email_length,
               md5(u.email) AS email_hash
        FROM silver.orders o JOIN silver.users u ON o.customer = CAST(u.id AS VARCHAR)
        WHERE lower(o.buyer_email) = u.email
        GROUP BY ALL
        """,
        "gold.x",
        schemas,
    )
    assert edges_of(edges, "who") == {
        ("silver.orders", "customer", "identity"),
        ("silver.users", "id", "join_key"),
    }
    for column in ("id_text", "id_big"):
        assert ("silver.users", "id", "carried") in edges_of(edges, column)
        assert ("silver.orders", "customer", "join_key") in edges_of(edges, column)
    assert edges_of(edges, "shout") == {("silver.users", "name", "carried")}
    for column in ("some_email", "first_email"):
        assert edges_of(edges, column) == {
            ("silver.users", "email", "carried"),
            ("silver.orders", "buyer_email", "join_key"),
        }
    assert ("silver.users", "name", "carried") in edges_of(edges, "top_name")
    assert ("silver.orders", "amount", "aggregation") in edges_of(edges, "top_name")
    assert edges_of(edges, "emails") == {("silver.users", "email", "aggregation")}
    assert edges_of(edges, "email_length") == {("silver.users", "email", "expression")}
    assert edges_of(edges, "email_hash") == {("silver.users", "email", "expression")}

    using = column_lineage(
        "SELECT user_id, o.amount FROM silver.orders2 o JOIN silver.users2 u USING (user_id)",
        "gold.y",
        {"silver.orders2": ["user_id", "amount"], "silver.users2": ["user_id", "email"]},
    )
    assert {(t, c) for t, c, _ in edges_of(using, "user_id")} == {
        ("silver.orders2", "user_id"),
        ("silver.users2", "user_id"),
    }
