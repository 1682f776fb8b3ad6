"""A warehouse on S3-compatible object storage, served by a real moto server on loopback."""

from __future__ import annotations

from tests.helpers.s3 import s3_warehouse


def test_warehouse_on_object_storage(s3_endpoint, tmp_path):
    lh = s3_warehouse(s3_endpoint, tmp_path)
    lh.write("silver.users", [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
    lh.write("silver.users", [{"id": 3, "name": "c"}])
    lh.write("silver.users", [{"id": 2, "name": "B"}], mode="merge", keys=["id"])
    lh.write("gold.t", [{"id": 1, "score": 5}], partition_by=["id"])
    assert lh.sql("SELECT id, name FROM silver.users ORDER BY id").rows() == [
        (1, "a"),
        (2, "B"),
        (3, "c"),
    ]
    assert lh.sql("SELECT count(*) FROM silver.users VERSION AS OF 1").scalar() == 2
    joined = lh.sql("SELECT u.name, g.score FROM silver.users u JOIN gold.t g USING (id)")
    assert joined.rows() == [("a", 5)]
    info = lh.table("silver.users").info
    assert info.location == "s3://lake/warehouse/silver/users"
    assert info.row_count == 3 and info.version == 3
    lh.table("silver.users").restore(1)
    assert lh.sql("SELECT count(*) FROM silver.users").scalar() == 2
