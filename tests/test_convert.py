"""``lakehouse convert``: a table rewritten in the other table format keeps its rows,
schema, partitioning, constraints, transaction numbers and catalog entry; a table being
written is refused or waited for; a failure leaves the table as it was."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.access import Access, AuditLog
from lakehouse.config import TableOptions
from lakehouse.errors import LakehouseError, TableBusyError
from lakehouse.names import parse_table_name
from lakehouse.service.convert import convert
from lakehouse.settings.model import Settings
from lakehouse.tables.write_lock import writing

OTHER = {"delta": "iceberg", "iceberg": "delta"}


def _orders(lh: Lakehouse, partition_by: tuple[str, ...] = ("region",)) -> None:
    rows = pa.table(
        {
            "id": pa.array(range(20), pa.int64()),
            "region": ["eu" if i % 3 else "us" for i in range(20)],
            "amount": [i * 1.25 for i in range(20)],
            "day": [date(2024, 1 + i % 3, 1 + i) for i in range(20)],
            "tags": [[f"t{i}"] for i in range(20)],
        }
    )
    opts = TableOptions(
        partition_by=partition_by,
        owner="ann",
        tags=("finance",),
        description="orders by region",
        column_tags={"amount": ("money",)},
        keys=("id",),
    )
    lh.write("silver.orders", rows, options=opts, txn=("loader", 7))
    lh.write("silver.orders", rows.slice(0, 5), mode="merge", keys=["id"])
    lh.table("silver.orders").add_constraint("positive", "amount >= 0")


def _content(lh: Lakehouse) -> list[tuple]:
    return lh.sql("SELECT * FROM silver.orders ORDER BY id").rows()


def test_convert_keeps_rows_schema_partitioning_and_catalog_entry(lh_formats, table_format):
    lh = lh_formats
    _orders(lh)
    access = Access(lh)
    access.grant("read", "silver.orders", "viewer")
    lh.catalog.record_lineage("shop", "gold.revenue", [{"source_table": "silver.orders"}])
    before = lh.table("silver.orders")
    rows, schema, version = _content(lh), before.schema, before.version
    info = lh.catalog.get("silver.orders")
    assert info is not None

    done = convert(lh, "silver.orders", OTHER[table_format])

    after = lh.table("silver.orders")
    assert after.format.name == OTHER[table_format] == done["target"]
    assert done["source_version"] == version and done["rows"] == 20
    assert _content(lh) == rows
    assert after.schema == schema
    assert after.partition_by == ["region"] == done["partition_by"]
    assert after.constraints == {"positive": "amount >= 0"}
    assert after.transaction_version("loader") == 7
    new = lh.catalog.get("silver.orders")
    assert new is not None and new.format == OTHER[table_format]
    assert (new.owner, new.tags, new.description) == (info.owner, info.tags, info.description)
    assert new.column_tags == info.column_tags and new.keys == ["id"]
    assert (new.row_count, new.version) == (20, after.version)
    assert new.created_at == info.created_at
    assert any(g["on"] == "silver.orders" for g in access.grants())
    assert lh.catalog.lineage_edges("silver.orders")
    # The converted table is written as any other: a merge, then back to the first format.
    lh.write("silver.orders", [{"id": 3, "region": "us", "amount": 9.0}], mode="merge", keys=["id"])
    convert(lh, "silver.orders", table_format)
    back = lh.table("silver.orders")
    assert back.format.name == table_format and back.partition_by == ["region"]
    assert lh.sql("SELECT amount FROM silver.orders WHERE id = 3").rows() == [(9.0,)]
    assert lh.table("silver.orders").count() == 20
    folder = Path(lh.table_uri(parse_table_name("silver.orders")))
    leftovers = [
        p.name for p in folder.parent.iterdir() if "converted" in p.name or "converting" in p.name
    ]
    assert leftovers == []


def test_another_process_reading_follows_the_conversion(lh_formats, table_format, tmp_path):
    lh = lh_formats
    _orders(lh)
    reader = Lakehouse(lh.root)  # another process's engine, already following the table
    assert reader.sql("SELECT count(*) FROM silver.orders").rows() == [(20,)]
    convert(lh, "silver.orders", OTHER[table_format])
    lh.write("silver.orders", [{"id": 100, "region": "eu", "amount": 1.0}])
    assert reader.sql("SELECT count(*) FROM silver.orders").rows() == [(21,)]
    assert reader.table("silver.orders").format.name == OTHER[table_format]


def test_iceberg_transform_partitions_are_said_to_have_no_delta_equivalent(tmp_path):
    lh = Lakehouse(tmp_path / "warehouse", settings=Settings(format="iceberg"))
    _orders(lh, partition_by=("month(day)", "region"))
    rows = _content(lh)
    done = convert(lh, "silver.orders", "delta")
    assert done["dropped_partitions"] == ["month(day)"]
    assert lh.table("silver.orders").partition_by == ["region"]
    assert _content(lh) == rows
    convert(lh, "silver.orders", "iceberg")
    assert _content(lh) == rows


def test_a_table_being_written_is_refused_or_waited_for(lh_formats, table_format):
    lh = lh_formats
    _orders(lh)
    name = parse_table_name("silver.orders")
    with writing(lh.storage, name):  # a writer at work on the table
        with pytest.raises(TableBusyError, match="being written"):
            convert(lh, "silver.orders", OTHER[table_format])
    assert lh.table("silver.orders").format.name == table_format

    started, finish = threading.Event(), threading.Event()

    def writer() -> None:
        with writing(lh.storage, name):
            started.set()
            finish.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    started.wait(30)
    result: dict = {}
    converter = threading.Thread(
        target=lambda: result.update(convert(lh, "silver.orders", OTHER[table_format], wait=60))
    )
    converter.start()
    finish.set()  # the writer ends: the conversion, waiting for it, goes on
    thread.join(30)
    converter.join(60)
    assert result["target"] == OTHER[table_format]
    assert lh.table("silver.orders").count() == 20


def test_a_failed_conversion_leaves_the_table_as_it_was(lh_formats, table_format):
    lh = lh_formats
    _orders(lh)
    rows = _content(lh)
    version = lh.table("silver.orders").version
    folder = Path(lh.table_uri(parse_table_name("silver.orders")))
    # Something in the way of the new table's files: the conversion cannot write them.
    blocker = folder / "data" if table_format == "delta" else folder.parent / ".orders.converting"
    keep = set(os.listdir(folder))
    blocker.write_text("in the way")
    with pytest.raises(Exception):  # noqa: B017 - the file system's own error
        convert(lh, "silver.orders", OTHER[table_format])
    fresh = Lakehouse(lh.root)
    assert fresh.table("silver.orders").format.name == table_format
    assert fresh.table("silver.orders").version == version
    assert fresh.sql("SELECT * FROM silver.orders ORDER BY id").rows() == rows
    assert set(os.listdir(folder)) - {"data"} == keep - {"data"}
    blocker.unlink()
    assert convert(lh, "silver.orders", OTHER[table_format])["rows"] == 20
    assert _content(lh) == rows


def test_convert_refuses_what_it_cannot_do(lh):
    lh.write("silver.small", [{"a": 1}])
    with pytest.raises(LakehouseError, match="already"):
        convert(lh, "silver.small", "delta")
    with pytest.raises(LakehouseError, match="unknown table format"):
        convert(lh, "silver.small", "paimon")
    with pytest.raises(LakehouseError, match="silver.none"):
        convert(lh, "silver.none", "iceberg")


def test_convert_command_and_endpoint(tmp_path):
    from fastapi.testclient import TestClient

    from lakehouse.api.app import create_app

    warehouse = tmp_path / "warehouse"
    lh = Lakehouse(warehouse)
    lh.write("gold.kpis", [{"k": "a", "v": 1}, {"k": "b", "v": 2}])
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    done = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(warehouse)]
        + ["convert", "gold.kpis", "--to", "iceberg"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "converted gold.kpis from delta (version 1) to iceberg: 2 rows" in done.stdout
    access = Access(lh)
    tokens = {role: access.create_token(f"t-{role}", role) for role in ("engineer", "analyst")}
    with TestClient(create_app(lh, access, AuditLog(lh))) as client:
        url, body = "/tables/gold.kpis/convert", {"to": "delta"}
        denied = client.post(
            url, json=body, headers={"Authorization": f"Bearer {tokens['analyst']}"}
        )
        engineer = {"Authorization": f"Bearer {tokens['engineer']}"}
        with writing(lh.storage, parse_table_name("gold.kpis")):
            busy = client.post(url, json=body, headers=engineer)
        allowed = client.post(url, json=body, headers=engineer)
    assert denied.status_code == 403, denied.text
    assert busy.status_code == 409 and "being written" in busy.json()["error"]["message"]
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["target"] == "delta" and allowed.json()["rows"] == 2
    assert Lakehouse(warehouse).table("gold.kpis").format.name == "delta"
