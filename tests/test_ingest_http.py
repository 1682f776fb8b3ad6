"""HTTP push ingestion: ``POST /ingest/{table}`` through a real ``lakehouse serve`` (several
worker processes) and a real HTTP client, into real Delta tables; exactly once per
Idempotency-Key, also across a kill -9 of the server and across the landing's two writes."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.access import Access
from lakehouse.ingest import push
from tests.helpers.server import Server, start_server

LIMIT = 64 * 1024  # the shared server's body limit (LAKEHOUSE_INGEST_MAX_BYTES)
NDJSON = {"Content-Type": "application/x-ndjson"}


def lines(*records: Any) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    warehouse = tmp_path_factory.mktemp("ingest") / "warehouse"
    access = Access(Lakehouse(warehouse))
    tokens = {role: access.create_token(f"{role}1", role) for role in ("engineer", "analyst")}
    server = start_server(
        warehouse,
        env={"LAKEHOUSE_INGEST_MAX_BYTES": str(LIMIT)},
        args=["--workers", "3"],
    )
    tokens["admin"] = server.login_token
    try:
        yield {"server": server, "tokens": tokens, "warehouse": warehouse}
    finally:
        server.stop()


def client(site: dict, role: str | None = "engineer") -> httpx.Client:
    server: Server = site["server"]
    return server.client(site["tokens"][role] if role else None)


def query(warehouse: Path, sql: str) -> list[dict[str, Any]]:
    """Rows read straight from the Delta tables, by a Lakehouse of the test's own."""
    return Lakehouse(warehouse).sql(sql).to_dicts()


def error_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["status"] == status and error["message"] and error["hint"], error
    assert "Traceback" not in answer.text
    return error


def test_rows_land_with_the_bronze_metadata(site: dict) -> None:
    body = lines(
        {"order_id": 1, "amount": 9.5, "country": "fr"},
        {"order_id": 2, "amount": 12.0, "country": "de"},
        {"order_id": 3, "amount": 3.25, "country": "fr"},
    )
    with client(site) as c:
        answer = c.post(
            "/ingest/bronze.orders", content=body, headers={**NDJSON, "X-Source-System": "shop"}
        )
        assert answer.status_code == 200, answer.text
        out = answer.json()
        assert out["table"] == "bronze.orders" and out["accepted"] == 3
        assert out["rescued"] == 0 and out["quarantined"] == 0 and out["duplicate"] is False
        assert out["request_id"].startswith("http:") and out["version"] >= 1
        # Queryable through the API too.
        sql = "SELECT country, sum(amount) AS total FROM bronze.orders GROUP BY 1 ORDER BY 1"
        assert c.post("/query", json={"sql": sql}).json()["rows"] == [["de", 12.0], ["fr", 12.75]]
    rows = query(site["warehouse"], "SELECT * FROM bronze.orders ORDER BY order_id")
    assert [r["order_id"] for r in rows] == [1, 2, 3]
    assert {r["_source_system"] for r in rows} == {"shop"}
    assert {r["_source"] for r in rows} == {out["request_id"]}
    assert all(r["_ingested_at"] is not None and r["_record_hash"] for r in rows)


def test_content_types_and_default_source_system(site: dict) -> None:
    with client(site) as c:
        for i, media in enumerate(
            ["application/jsonl", "application/json; charset=utf-8", "text/plain", None]
        ):
            headers = {"Content-Type": media} if media else {}
            answer = c.post("/ingest/bronze.typed", content=lines({"i": i}), headers=headers)
            assert answer.status_code == 200, (media, answer.text)
    rows = query(site["warehouse"], "SELECT i, _source_system FROM bronze.typed ORDER BY i")
    assert rows == [{"i": i, "_source_system": "http"} for i in range(4)]


def test_schema_drift_adds_a_column_and_rescues_what_does_not_fit(site: dict) -> None:
    with client(site) as c:
        first = c.post("/ingest/bronze.drift", content=lines({"id": 1, "amount": 2}))
        assert first.status_code == 200, first.text
        second = c.post(
            "/ingest/bronze.drift",
            content=lines({"id": 2, "amount": "lots", "note": "new"}, {"id": 3, "amount": 4}),
            headers=NDJSON,
        )
        assert second.status_code == 200, second.text
        assert second.json()["accepted"] == 2 and second.json()["rescued"] == 1
        columns = {
            col["name"]: col["type"] for col in c.get("/tables/bronze.drift").json()["columns"]
        }
    assert "note" in columns and "_rescued_data" in columns
    rows = query(
        site["warehouse"], "SELECT id, amount, note, _rescued_data FROM bronze.drift ORDER BY id"
    )
    assert [(r["id"], r["amount"], r["note"]) for r in rows] == [
        (1, 2, None),
        (2, None, "new"),
        (3, 4, None),
    ]
    assert json.loads(rows[1]["_rescued_data"]) == {"amount": "lots"}
    assert rows[0]["_rescued_data"] is None and rows[2]["_rescued_data"] is None


def test_objects_without_values_still_land(site: dict) -> None:
    with client(site) as c:
        answer = c.post("/ingest/bronze.hollow", content=b'{}\n{"x": null}\n', headers=NDJSON)
    assert answer.status_code == 200 and answer.json()["accepted"] == 2, answer.text
    assert query(site["warehouse"], "SELECT count(*) AS n FROM bronze.hollow") == [{"n": 2}]


def test_an_idempotency_key_lands_once(site: dict) -> None:
    body = lines({"event": "a"}, {"event": "b"})
    with client(site) as c:
        headers = {**NDJSON, "Idempotency-Key": "batch-0001"}
        first = c.post("/ingest/bronze.keyed", content=body, headers=headers)
        again = c.post("/ingest/bronze.keyed", content=body, headers=headers)
        other = c.post(
            "/ingest/bronze.keyed",
            content=body,
            headers={**NDJSON, "Idempotency-Key": "batch-0002"},
        )
        keyless = [c.post("/ingest/bronze.keyed", content=body, headers=NDJSON) for _ in range(2)]
    assert first.status_code == again.status_code == other.status_code == 200
    assert first.json()["duplicate"] is False and first.json()["accepted"] == 2
    assert again.json()["duplicate"] is True and again.json()["accepted"] == 0
    assert again.json()["request_id"] == first.json()["request_id"]
    assert other.json()["duplicate"] is False
    assert all(k.status_code == 200 and not k.json()["duplicate"] for k in keyless)
    assert keyless[0].json()["request_id"] != keyless[1].json()["request_id"]
    counts = query(
        site["warehouse"],
        "SELECT _source, count(*) AS n FROM bronze.keyed GROUP BY 1 ORDER BY 1",
    )
    assert sorted(r["n"] for r in counts) == [2, 2, 2, 2]  # 4 landings of 2 rows
    assert first.json()["request_id"] in {r["_source"] for r in counts}


def test_bad_lines_are_quarantined_with_their_line_numbers(site: dict) -> None:
    body = b'{"id": 1}\nnot json\n[1, 2]\n{"id": 4}\n\nnull\n'
    with client(site) as c:
        answer = c.post("/ingest/bronze.mixed", content=body, headers=NDJSON)
    error = error_of(answer, 422)
    assert "bronze.mixed_quarantine" in error["message"]
    out = answer.json()
    assert out["accepted"] == 2 and out["quarantined"] == 3 and out["duplicate"] is False
    assert [x["line"] for x in out["lines"]] == [2, 3, 6]
    assert "invalid JSON" in out["lines"][0]["reason"]
    assert out["lines"][1]["reason"] == "not a JSON object"
    quarantined = query(
        site["warehouse"],
        "SELECT raw_payload, reason, _source FROM bronze.mixed_quarantine ORDER BY reason",
    )
    assert [q["raw_payload"] for q in quarantined] == ["not json", "[1, 2]", "null"]
    assert [q["reason"].split(":")[0] for q in quarantined] == ["line 2", "line 3", "line 6"]
    assert {q["_source"] for q in quarantined} == {out["request_id"]}
    landed = query(site["warehouse"], "SELECT id, _source FROM bronze.mixed ORDER BY id")
    assert landed == [
        {"id": 1, "_source": out["request_id"]},
        {"id": 4, "_source": out["request_id"]},
    ]


def test_quarantine_tables_accept_no_pushes(site: dict) -> None:
    with client(site) as c:
        error_of(c.post("/ingest/bronze.guarded", content=lines({"id": 1}, b"oops")), 422)
        for table in ("bronze.guarded_quarantine", "bronze.never_quarantine"):
            answer = c.post("/ingest/" + table, content=lines({"raw_payload": "forged"}))
            refused = error_of(answer, 400)
            assert "quarantine table" in refused["message"], table
            if table == "bronze.guarded_quarantine":
                assert "bronze.guarded" in refused["hint"]
    rows = query(site["warehouse"], "SELECT raw_payload FROM bronze.guarded_quarantine")
    assert rows == [{"raw_payload": "oops"}]  # nothing forged landed
    with client(site, "admin") as c:
        assert c.get("/tables/bronze.never_quarantine").status_code == 404


def test_at_most_a_hundred_bad_lines_are_listed(site: dict) -> None:
    body = lines({"ok": True}, *[b"oops"] * 150)
    with client(site) as c:
        answer = c.post("/ingest/bronze.many_bad", content=body, headers=NDJSON)
    error_of(answer, 422)
    out = answer.json()
    assert out["accepted"] == 1 and out["quarantined"] == 150
    assert [x["line"] for x in out["lines"]] == list(range(2, 102))
    count = query(site["warehouse"], "SELECT count(*) AS n FROM bronze.many_bad_quarantine")
    assert count == [{"n": 150}]


def test_refusals(site: dict) -> None:
    ok = lines({"a": 1})
    with client(site) as c:
        too_big = c.post("/ingest/bronze.refused", content=b"{}\n" * (LIMIT // 3 + 1))
        assert str(LIMIT) in error_of(too_big, 413)["message"]
        assert "split" in error_of(too_big, 413)["hint"]
        streamed = c.post(
            "/ingest/bronze.refused", content=iter([b'{"a": 1}\n'] * (LIMIT // 9 + 1))
        )
        error_of(streamed, 413)  # no Content-Length: counted while it streams in
        assert "no lines" in error_of(c.post("/ingest/bronze.refused", content=b""), 400)["message"]
        error_of(c.post("/ingest/bronze.refused", content=b" \n\n"), 400)
        silver = error_of(c.post("/ingest/silver.refused", content=ok), 400)
        assert "bronze" in silver["message"] and "bronze.refused" in silver["hint"]
        error_of(c.post("/ingest/not-a-table", content=ok), 400)
        csv = error_of(
            c.post("/ingest/bronze.refused", content=ok, headers={"Content-Type": "text/csv"}), 415
        )
        assert "application/x-ndjson" in csv["hint"]
        gzipped = c.post(
            "/ingest/bronze.refused", content=ok, headers={**NDJSON, "Content-Encoding": "gzip"}
        )
        error_of(gzipped, 415)
        for key in ["", "k" * 256, "caf\u00e9".encode("latin-1"), "tab\there"]:
            answer = c.post("/ingest/bronze.refused", content=ok, headers={"Idempotency-Key": key})
            assert "Idempotency-Key" in error_of(answer, 400)["message"], key
        clash = c.post("/ingest/bronze.refused", content=lines({"a": 1}, {"A": 2}))
        assert "case" in error_of(clash, 400)["message"]
        empty_name = c.post("/ingest/bronze.refused", content=lines({"": 1}))
        assert "empty name" in error_of(empty_name, 400)["message"]
    with client(site, None) as c:
        error_of(c.post("/ingest/bronze.refused", content=ok), 401)
    with client(site, "analyst") as c:
        denied = error_of(c.post("/ingest/bronze.refused", content=ok), 403)
        assert "ingest" in denied["message"] and "engineer" in denied["hint"]
    with client(site, "admin") as c:
        assert c.get("/tables/bronze.refused").status_code == 404  # nothing landed
        assert c.get("/tables/bronze.refused_quarantine").status_code == 404


def test_concurrent_pushes_all_land_exactly_once(site: dict) -> None:
    threads, pushes, rows = 8, 10, 5
    barrier = threading.Barrier(threads)

    def pusher(t: int) -> list[tuple[int, bool]]:
        results = []
        with client(site) as c:
            barrier.wait()  # all start together, the table does not exist yet
            for p in range(pushes):
                body = lines(*[{"thread": t, "push": p, "row": r} for r in range(rows)])
                headers = {**NDJSON, "Idempotency-Key": f"t{t}-p{p}"}
                answer = c.post("/ingest/bronze.crowd", content=body, headers=headers)
                results.append((answer.status_code, answer.json()["duplicate"]))
                if p % 5 == 0:  # a retry of a push whose answer was taken as lost
                    again = c.post("/ingest/bronze.crowd", content=body, headers=headers)
                    results.append((again.status_code, again.json()["duplicate"]))
        return results

    with ThreadPoolExecutor(threads) as pool:
        results = [r for rs in pool.map(pusher, range(threads)) for r in rs]
    assert all(status == 200 for status, _ in results), results
    assert sum(duplicate for _, duplicate in results) == threads * pushes // 5
    figures = query(
        site["warehouse"],
        "SELECT count(*) AS n, count(DISTINCT _source) AS sources, "
        "count(DISTINCT (thread, push, row)) AS distinct_rows FROM bronze.crowd",
    )
    total = threads * pushes * rows
    assert figures == [{"n": total, "sources": threads * pushes, "distinct_rows": total}]


def test_openapi_declares_the_body(site: dict) -> None:
    with client(site) as c:
        operation = c.get("/openapi.json").json()["paths"]["/ingest/{table}"]["post"]
    content = operation["requestBody"]["content"]
    assert content["application/x-ndjson"]["schema"] == {"type": "string"}
    assert {"413", "415", "422"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} >= {"table", "Idempotency-Key"}


# -- exactly once across the two writes and across a kill -----------------------------------


def test_land_twice_with_one_key_lands_once(lh: Lakehouse) -> None:
    body = lines({"n": 1}, b"broken", {"n": 2})
    first = push.land(lh, "bronze.direct", body, key="k-1")
    assert (first.accepted, first.quarantined, first.duplicate) == (2, 1, False)
    second = push.land(lh, "bronze.direct", body, key="k-1")
    assert (second.accepted, second.quarantined, second.duplicate) == (0, 0, True)
    assert second.request_id == first.request_id
    assert lh.sql("SELECT count(*) AS n FROM bronze.direct").to_dicts() == [{"n": 2}]
    assert lh.sql("SELECT count(*) AS n FROM bronze.direct_quarantine").to_dicts() == [{"n": 1}]


def test_a_push_stopped_between_its_two_writes_completes_on_retry(lh: Lakehouse) -> None:
    body = lines({"n": 1}, b"broken", {"n": 2})
    # The first attempt wrote the quarantine and stopped there (a kill, a lost worker).
    push.Push(lh, "bronze.halfway", body, key="k-2").quarantine()
    assert lh.catalog.get("bronze.halfway") is None
    retry = push.land(lh, "bronze.halfway", body, key="k-2")
    assert (retry.accepted, retry.quarantined, retry.duplicate) == (2, 1, False)
    assert [b.index for b in retry.bad] == [1]
    final = push.land(lh, "bronze.halfway", body, key="k-2")
    assert final.duplicate is True
    quarantine = lh.sql("SELECT reason, _source FROM bronze.halfway_quarantine").to_dicts()
    assert len(quarantine) == 1 and quarantine[0]["reason"].startswith("line 2:")
    assert quarantine[0]["_source"] == retry.request_id
    assert lh.sql("SELECT count(*) AS n FROM bronze.halfway").to_dicts() == [{"n": 2}]


def test_only_bad_lines_and_their_retry(lh: Lakehouse) -> None:
    first = push.land(lh, "bronze.all_bad", b"x\ny\n", key="k-3")
    assert (first.accepted, first.quarantined, first.version) == (0, 2, None)
    assert lh.catalog.get("bronze.all_bad") is None  # nothing to create it with
    assert push.land(lh, "bronze.all_bad", b"x\ny\n", key="k-3").duplicate is True


def test_rows_shaped_before_another_writer_typed_the_table(lh: Lakehouse) -> None:
    """Two first pushes of one table: this one read {"x": "text"} for a table that did not
    exist, another made x a number before this one wrote; the value is rescued."""
    pending = push.Push(lh, "bronze.raced", lines({"x": "text", "y": 1}), key="k-4")
    lh.write("bronze.raced", pa.table({"x": [1]}), evolve=True)
    pending.quarantine()
    pending.land()
    result = pending.finish()
    assert (result.accepted, result.rescued) == (1, 1)
    rows = lh.sql("SELECT x, y, _rescued_data FROM bronze.raced WHERE y = 1").to_dicts()
    assert rows == [{"x": None, "y": 1, "_rescued_data": '{"x": "text"}'}]


def test_a_body_starting_with_null_is_read_line_by_line(lh: Lakehouse) -> None:
    # pyarrow's JSON reader would crash the process on it.
    result = push.land(lh, "bronze.nulls", b'null\n{"a": 1}\n  null\n{"a": 2}\n')
    assert (result.accepted, result.quarantined) == (2, 2)
    assert [b.index for b in result.bad] == [0, 2]


def test_a_retry_after_a_kill_lands_exactly_once(tmp_path: Path) -> None:
    """The server is killed (SIGKILL) while it lands a push, wherever it is in the landing;
    the client retries with the same key against the restarted server."""
    warehouse = tmp_path / "warehouse"
    good = 30_000
    records = [{"id": i, "text": f"row {i}"} for i in range(good)]
    body = lines(*records[:10], b"{broken", *records[10:])
    key = {**NDJSON, "Idempotency-Key": "order-export-2026-11-01"}
    server = start_server(warehouse, args=["--workers", "1"])
    try:
        answers: list[Any] = []

        def send() -> None:
            try:
                with server.client(server.login_token) as c:
                    answers.append(c.post("/ingest/bronze.export", content=body, headers=key))
            except httpx.HTTPError as exc:  # the server died under the request
                answers.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        # Kill once the quarantine write (the first of the two) has committed, or when the
        # answer came first: wherever the kill lands, the outcome must be the same.
        quarantined = warehouse / "bronze" / "export_quarantine" / "_delta_log"
        while not (quarantined / f"{1:020d}.json").exists() and sender.is_alive():
            sender.join(0.002)
        server.proc.kill()
        server.proc.wait()
        sender.join()
    finally:
        server.stop()
    server = start_server(warehouse, args=["--workers", "1"])
    try:
        with server.client(server.login_token) as c:
            retry = c.post("/ingest/bronze.export", content=body, headers=key)
            last = c.post("/ingest/bronze.export", content=body, headers=key)
    finally:
        server.stop()
    assert retry.status_code in (200, 422), retry.text
    assert last.status_code == 200 and last.json()["duplicate"] is True
    request_id = push.request_id("order-export-2026-11-01")
    lh = Lakehouse(warehouse)
    landed = lh.sql(
        "SELECT count(*) AS n, count(DISTINCT id) AS ids, min(_source) AS source FROM bronze.export"
    ).to_dicts()
    assert landed == [{"n": good, "ids": good, "source": request_id}]
    quarantined = lh.sql("SELECT reason FROM bronze.export_quarantine").to_dicts()
    assert len(quarantined) == 1 and quarantined[0]["reason"].startswith("line 11:")


# -- nesting found without a parser -----------------------------------------------------------


def _reference_depths(segment: bytes) -> tuple[int, bool]:
    """Deepest nesting and balance of one line, byte by byte (backslashes escape the next
    byte everywhere, as the array scan counts them)."""
    level = deepest = lowest = 0
    in_string = escaped = False
    for byte in segment:
        if byte == 0x5C:
            escaped = not escaped
            continue
        if byte == 0x22 and not escaped:
            in_string = not in_string
        elif not in_string and byte in b"{[":
            level += 1
            deepest = max(deepest, level)
        elif not in_string and byte in b"}]":
            level -= 1
            lowest = min(lowest, level)
        escaped = False
    return deepest, level != 0 or lowest < 0


def test_the_nesting_scan_agrees_with_a_byte_by_byte_scan(monkeypatch) -> None:
    import random

    import numpy as np

    from lakehouse import nesting

    monkeypatch.setattr(nesting, "CHUNK", 16)  # many chunks, and lines longer than one
    rng = random.Random(11)
    for _ in range(1500):
        data = bytes(rng.choice(b'{}[]"\\a\n') for _ in range(rng.randint(1, 80)))
        raw = np.frombuffer(data, np.uint8)
        starts = np.concatenate([[0], np.flatnonzero(raw == 10) + 1])
        starts = starts[:-1] if starts[-1] == raw.size else starts
        deepest, unbalanced = nesting.segment_depths(raw, starts)
        bounds = [*starts.tolist(), raw.size]
        for i in range(len(starts)):
            expected = _reference_depths(data[bounds[i] : bounds[i + 1]])
            assert (int(deepest[i]), bool(unbalanced[i])) == expected, (data, i)


def test_deep_lines_are_quarantined_with_their_numbers_whatever_ends_lines(lh: Lakehouse) -> None:
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    body = b'{"id": 1}\r' + deep + b'\r\n{"s": "[[[[ in a string", "id": 2}\n' + b"[" * 40 + b"\n"
    result = push.land(lh, "bronze.nested", body)
    assert result.accepted == 2 and result.quarantined == 2
    assert [(b.index + 1, b.reason) for b in result.bad] == [
        (2, "the line nests 5000 levels deep, more than the 32 allowed"),
        (4, "the line nests 40 levels deep, more than the 32 allowed"),
    ]
    rows = lh.sql("SELECT reason FROM bronze.nested_quarantine ORDER BY reason").to_dicts()
    assert [r["reason"][:7] for r in rows] == ["line 2:", "line 4:"]
