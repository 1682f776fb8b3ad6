"""The catalog in PostgreSQL instead of the warehouse's SQLite file."""

from __future__ import annotations

import pytest

from lakehouse import Lakehouse
from tests.postgres import postgres_server


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as url:
        yield url


def test_catalog_in_postgres(tmp_path, pg_url):
    lh = Lakehouse(tmp_path / "w", catalog_url=pg_url)
    lh.write("silver.users", [{"id": 1, "email": "a@x"}], tags=["core"])
    lh.write("silver.users", [{"id": 2, "email": "b@x", "age": 3}], evolve=True)
    assert not (tmp_path / "w" / "_catalog.db").exists()
    again = Lakehouse(tmp_path / "w", catalog_url=pg_url)
    info = again.table("silver.users").info
    assert info.row_count == 2 and info.version == 2
    assert [h["change"] for h in info.schema_history] == ["created", "added column age"]
    assert [t.name for t in again.tables(tag="core")] == ["silver.users"]
    assert again.sql("SELECT sum(id) FROM silver.users").scalar() == 3


def test_catalog_url_from_environment(tmp_path, pg_url, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_CATALOG_URL", pg_url)
    lh = Lakehouse(tmp_path / "w2")
    lh.write("gold.kpi", [{"k": 1}])
    assert "gold.kpi" in [t.name for t in Lakehouse(tmp_path / "w2").tables()]


def test_the_pseudonym_key_lives_in_the_postgres_catalog(tmp_path, pg_url):
    from lakehouse.sql.masking import pseudonym, warehouse_key

    lh = Lakehouse(tmp_path / "w3", catalog_url=pg_url)
    lh.write("silver.people", [{"id": 1, "email": "a@x"}])
    sql = "SELECT email FROM silver.people"
    shown = lh.engine.safe_query(sql, masked=lambda t: ["email"]).table.column("email")[0]
    again = Lakehouse(tmp_path / "w3", catalog_url=pg_url)  # another process, the same key
    assert warehouse_key(again.catalog) == warehouse_key(lh.catalog)
    assert shown.as_py() == pseudonym("a@x", warehouse_key(again.catalog))
    assert again.engine.safe_query(sql, masked=lambda t: ["email"]).table.column("email")[
        0
    ].as_py() == shown.as_py()


def test_iceberg_tables_in_the_postgres_catalog(tmp_path, pg_url):
    """pyiceberg's SQL catalog lives in the warehouse's PostgreSQL catalog database."""
    from lakehouse.settings.model import Settings
    from tests.helpers.iceberg import iceberg_rows

    lh = Lakehouse(tmp_path / "w4", catalog_url=pg_url, settings=Settings(format="iceberg"))
    lh.write("silver.ice", [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}])
    lh.write("silver.ice", [{"id": 2, "v": "B"}], mode="merge", keys=["id"])
    again = Lakehouse(tmp_path / "w4", catalog_url=pg_url)
    assert again.table("silver.ice").format.name == "iceberg"
    assert again.sql("SELECT id, v FROM silver.ice ORDER BY id").rows() == [(1, "a"), (2, "B")]
    assert sorted(iceberg_rows(again, "silver.ice", None).to_pylist(), key=lambda r: r["id"]) == [
        {"id": 1, "v": "a"},
        {"id": 2, "v": "B"},
    ]
