"""A landing folder on S3-compatible storage (a real moto server on loopback): each object
landed once by its content, as a local folder's files are; ``--watch`` on a prefix; the
store's failures told with their cause and fix, nothing written."""

from __future__ import annotations

import io
import json
import signal
import sqlite3
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse import Lakehouse, LakehouseError
from lakehouse.ingest.files import ingest_folder
from lakehouse.ingest.landing import LandingPath, Stat
from lakehouse.ingest.watch import settled, watch_folder
from tests.helpers.s3 import KEY, REGION, SECRET, client, free_port, moto_server, s3_warehouse
from tests.test_ingest_watch import Watcher, csv_rows, rows, until


def environment(endpoint: str) -> dict[str, str]:
    """What reaches the server, as the environment (or a warehouse's options) says it."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": REGION,
    }


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_a_prefix_lands_each_object_once_with_the_warehouses_options(s3_endpoint, tmp_path):
    lh = s3_warehouse(s3_endpoint, tmp_path)  # the landing folder is reached with its options
    s3 = client(s3_endpoint)
    s3.create_bucket(Bucket="landing")

    def put(key: str, body: str | bytes) -> None:
        s3.put_object(Bucket="landing", Key=f"orders/{key}", Body=body)

    put("a.csv", "user_id,kind\n1,click\n2,view\n")
    put("day=2/b.jsonl", '{"user_id": 3, "kind": "buy"}\n{"user_id": 4, "kind": \n')
    put("c.json", json.dumps([{"user_id": 5, "kind": "open"}]))
    put("d.parquet", parquet_bytes(pa.table({"user_id": [6, 7], "kind": ["x", "y"]})))
    put("copy-of-a.csv", "user_id,kind\n1,click\n2,view\n")  # a's content again
    put("broken.json", "{not json")
    put("_manifest.json", "[]")  # markers and files being written are left alone
    put(".part/e.csv", "user_id,kind\n9,no\n")
    put("notes.txt", "not data")
    s3.put_object(Bucket="landing", Key="elsewhere/f.csv", Body="user_id,kind\n9,no\n")

    # Before the first run, a pipeline's files dataset on the prefix gets its columns from
    # the first object, so what reads it is checked.
    from lakehouse.pipeline import load_pipeline, run_pipeline, validate

    pipeline = tmp_path / "pipeline"
    (pipeline / "bronze").mkdir(parents=True)
    (pipeline / "silver").mkdir()
    (pipeline / "bronze" / "orders.yml").write_text("kind: files\npath: ${landing}\n")
    (pipeline / "silver" / "kinds.sql").write_text("SELECT DISTINCT kind FROM bronze.orders\n")
    landing = {"landing": "s3://landing/orders"}
    assert validate(load_pipeline(pipeline, landing), lh).unchecked == {}

    report = ingest_folder(lh, "s3://landing/orders", "bronze.orders", source_system="shop")
    assert report.rows == 6 and report.quarantined == 2
    assert sorted(report.files_ingested) == [
        f"s3://landing/orders/{name}"
        for name in ("a.csv", "broken.json", "c.json", "d.parquet", "day=2/b.jsonl")
    ]
    assert report.duplicates == {"s3://landing/orders/copy-of-a.csv": "s3://landing/orders/a.csv"}
    got = lh.sql("SELECT user_id, _source FROM bronze.orders ORDER BY user_id").rows()
    assert [r[0] for r in got] == [1, 2, 3, 5, 6, 7]
    assert got[0][1] == "s3://landing/orders/a.csv"
    bad = lh.sql("SELECT _source, reason FROM bronze.orders_quarantine ORDER BY _source").rows()
    assert [r[0] for r in bad] == [
        "s3://landing/orders/broken.json",
        "s3://landing/orders/day=2/b.jsonl",
    ]
    assert "invalid JSON" in bad[0][1] and bad[1][1].startswith("line 2")

    version = lh.table("bronze.orders").version
    again = ingest_folder(lh, "s3://landing/orders", "bronze.orders")
    assert again.files_ingested == [] and again.rows == 0 and again.quarantined == 0
    assert len(again.files_skipped) == 6
    assert lh.table("bronze.orders").version == version

    # The pipeline's files dataset on the prefix takes in only what is new.
    put("g.csv", "user_id,kind\n8,late\n")
    run = run_pipeline(lh, load_pipeline(pipeline, landing))
    [bronze] = [d for d in run.datasets if d.dataset == "bronze.orders"]
    assert bronze.rows_written == 1 and "(1 new file(s))" in bronze.strategy

    # The same content under a local folder is the same file: nothing new.
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.csv").write_text("user_id,kind\n1,click\n2,view\n")
    assert ingest_folder(lh, local, "bronze.orders").files_skipped == [str(local / "a.csv")]


def test_watch_on_a_prefix_lands_uploads_once_and_stops_on_sigterm(
    s3_endpoint, tmp_path, monkeypatch
):
    # A local warehouse: the landing folder is reached with the environment's settings.
    for name, value in environment(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    s3 = client(s3_endpoint)
    s3.create_bucket(Bucket="landing")
    s3.put_object(Bucket="landing", Key="events/a.csv", Body=csv_rows(0, 100))
    warehouse = tmp_path / "w"
    Lakehouse(warehouse)
    watcher = Watcher(warehouse, "s3://landing/events", interval=0.3)
    try:
        until(lambda: rows(warehouse) == 100, "the object there before the watch")
        s3.put_object(Bucket="landing", Key="events/b.csv", Body=csv_rows(100, 250))
        s3.put_object(Bucket="landing", Key="events/later/c.csv", Body=csv_rows(250, 300))
        until(lambda: rows(warehouse) == 300, "the objects uploaded while it runs")

        # A multipart upload is not listed until it completes.
        upload = s3.create_multipart_upload(Bucket="landing", Key="events/big.csv")
        part = s3.upload_part(
            Bucket="landing",
            Key="events/big.csv",
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=csv_rows(300, 400),
        )
        s3.put_object(Bucket="landing", Key="events/copy-of-a.csv", Body=csv_rows(0, 100))
        s3.put_object(Bucket="landing", Key="events/bad.csv", Body="id,name\n1,2,3\n")
        # Both landed (at a later look than the part's upload): bad.csv quarantined, the
        # copy of a skipped.
        watcher.wait_for_all(["1 quarantined", "1 already ingested"])
        assert rows(warehouse) == 300
        s3.complete_multipart_upload(
            Bucket="landing",
            Key="events/big.csv",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
        )
        until(lambda: rows(warehouse) == 400, "the completed multipart upload")
        output = watcher.stop(signal.SIGTERM)
    finally:
        watcher.kill()
    assert watcher.proc.returncode == 0, output
    assert "stopped: 400 row(s) landed" in output and "Traceback" not in output
    lh = Lakehouse(warehouse)
    total, distinct = lh.sql("SELECT count(*), count(DISTINCT id) FROM bronze.events").rows()[0]
    assert total == distinct == 400
    sources = lh.sql("SELECT DISTINCT _source FROM bronze.events ORDER BY 1").rows()
    assert [s for (s,) in sources] == [
        f"s3://landing/events/{name}" for name in ("a.csv", "b.csv", "big.csv", "later/c.csv")
    ]
    bad = lh.sql("SELECT _source, reason FROM bronze.events_quarantine").rows()
    assert bad == [("s3://landing/events/bad.csv", bad[0][1])] and "3 field(s)" in bad[0][1]


def test_a_watch_carries_on_when_the_store_stops_answering(tmp_path, monkeypatch):
    troubles: list[Exception] = []
    stop = threading.Event()
    landed: list[int] = []
    with moto_server() as endpoint:
        for name, value in environment(endpoint).items():
            monkeypatch.setenv(name, value)
        s3 = client(endpoint)
        s3.create_bucket(Bucket="landing")
        s3.put_object(Bucket="landing", Key="events/a.csv", Body=csv_rows(0, 100))
        warehouse = tmp_path / "w"
        lh = Lakehouse(warehouse)

        def watch() -> None:
            landed.append(
                watch_folder(
                    lh,
                    "s3://landing/events",
                    "bronze.events",
                    interval=0.1,
                    stop=stop.is_set,
                    on_trouble=troubles.append,
                )
            )

        watching = threading.Thread(target=watch)
        watching.start()
        try:
            until(lambda: rows(warehouse) == 100, "the object")
        except BaseException:
            stop.set()
            raise
    try:  # the server is gone
        until(lambda: bool(troubles), "a look the store failed")
    finally:
        stop.set()
        watching.join(timeout=120)
    assert landed == [100], troubles
    assert f"the object store at {endpoint} does not answer" in str(troubles[0])


def test_an_object_has_settled_once_listed():
    whole = LandingPath("s3://landing/a.csv")
    assert settled({whole: Stat(10, 5, 5, 0, whole=True)}, {}) == [whole]


def test_objects_are_not_read_again_while_their_etag_stays(s3_endpoint, tmp_path, monkeypatch):
    for name, value in environment(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    s3 = client(s3_endpoint)
    s3.create_bucket(Bucket="landing")
    s3.put_object(Bucket="landing", Key="in/a.csv", Body="id,kind\n1,x\n")
    s3.put_object(Bucket="landing", Key="in/b.csv", Body="id,kind\n2,y\n")
    lh = Lakehouse(tmp_path / "w")
    assert len(ingest_folder(lh, "s3://landing/in", "bronze.c").files_ingested) == 2
    cache = sqlite3.connect(tmp_path / "w" / "_ingest" / "file_ids.sqlite")
    with cache:
        remembered = dict(cache.execute("SELECT uri, id FROM object_ids"))
        assert set(remembered) == {"s3://landing/in/a.csv", "s3://landing/in/b.csv"}
        # An unchanged object is not read again: what the cache says is what counts.
        cache.execute("UPDATE object_ids SET id = 'file:sha256:0:1' WHERE uri LIKE '%a.csv'")
    cache.close()
    assert ingest_folder(lh, "s3://landing/in", "bronze.c").files_ingested == [
        "s3://landing/in/a.csv"
    ]
    s3.put_object(Bucket="landing", Key="in/b.csv", Body="id,kind\n3,z\n")  # a new ETag
    assert ingest_folder(lh, "s3://landing/in", "bronze.c").files_ingested == [
        "s3://landing/in/b.csv"
    ]
    assert lh.sql("SELECT list(id ORDER BY id) FROM bronze.c").scalar() == [1, 1, 2, 3]


def test_debezium_event_files_on_a_prefix_land_once(s3_endpoint, tmp_path, monkeypatch):
    from lakehouse.ingest.debezium import ingest_folder as ingest_events

    for name, value in environment(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    s3 = client(s3_endpoint)
    s3.create_bucket(Bucket="landing")
    a, b = {"id": 1, "name": "a"}, {"id": 1, "name": "b"}
    src = {"connector": "db2", "db": "shop", "table": "customers", "ts_ms": 0}
    events = [
        {"before": None, "after": a, "source": src, "op": "c", "ts_ms": 1},
        {"before": a, "after": b, "source": src, "op": "u", "ts_ms": 2},
    ]
    body = "\n".join(json.dumps(e) for e in events) + '\n{"broken": \n'
    s3.put_object(Bucket="landing", Key="cdc/a.jsonl", Body=body)
    lh = Lakehouse(tmp_path / "w")
    report = ingest_events(lh, "s3://landing/cdc", "bronze.changes", key_columns=["id"])
    assert report.files_ingested == ["s3://landing/cdc/a.jsonl"]
    assert report.changes == 2 and report.quarantined == 1
    again = ingest_events(lh, "s3://landing/cdc", "bronze.changes", key_columns=["id"])
    assert again.files_ingested == [] and again.files_skipped == ["s3://landing/cdc/a.jsonl"]


def test_the_stores_failures_name_their_cause_and_write_nothing(s3_endpoint, tmp_path):
    options = environment(s3_endpoint)
    lh = Lakehouse(tmp_path / "w", storage_options=options)
    with pytest.raises(LakehouseError) as missing:
        ingest_folder(lh, "s3://no-such-bucket/orders", "bronze.orders")
    assert f"no bucket no-such-bucket at {s3_endpoint}" in str(missing.value)
    assert "create the bucket" in str(missing.value)

    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    lh = Lakehouse(tmp_path / "w", storage_options={**options, "AWS_ENDPOINT_URL": nobody})
    with pytest.raises(LakehouseError) as unreachable:
        ingest_folder(lh, "s3://landing/orders", "bronze.orders")
    assert f"the object store at {nobody} does not answer" in str(unreachable.value)
    assert "AWS_ENDPOINT_URL" in str(unreachable.value)

    with moto_server(checks_keys=True) as strict:  # it knows no keys
        lh = Lakehouse(tmp_path / "w", storage_options={**options, "AWS_ENDPOINT_URL": strict})
        with pytest.raises(LakehouseError) as refused:
            ingest_folder(lh, "s3://landing/orders", "bronze.orders")
    assert f"the object store at {strict} refused the credentials" in str(refused.value)
    assert "AWS_ACCESS_KEY_ID" in str(refused.value)
    assert not lh.exists("bronze.orders") and not lh.exists("bronze.orders_quarantine")
