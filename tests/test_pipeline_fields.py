"""What a pipeline says of its tables and of its data's quality: the header's table fields in
the catalog for every kind, ingestion's unreadable records as a quality result, and warn
checks reported as warnings."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.pipeline import load_pipeline, run_pipeline


def fields(description: str, tags: str, days: int) -> str:
    return textwrap.dedent(
        f"""\
        description: {description}
        owner: data-team
        tags: [{tags}]
        column_tags: {{user_id: [pii]}}
        retention_days: {days}
        """
    )


def header(text: str) -> str:
    return "".join(f"-- {line}\n" for line in text.splitlines())


def write_pipeline(folder: Path, description: str, tags: str, days: int) -> None:
    files = {
        "bronze/raw.yml": f"kind: files\npath: ${{landing}}\n{fields(description, tags, days)}",
        "silver/events.sql": "-- kind: append\n-- keys: [event_id]\n-- expectations:\n"
        '--   - {name: positive, expect: "n > 0"}\n'
        + header(fields(description, tags, days))
        + "SELECT event_id, user_id, n FROM bronze.raw",
        "silver/state.sql": "-- kind: cdc\n-- keys: [user_id]\n-- sequence_by: seq\n"
        + header(fields(description, tags, days))
        + "SELECT user_id, v, seq FROM bronze.changes",
        "gold/totals.sql": header(fields(description, tags, days))
        + "SELECT user_id, sum(n) AS n FROM silver.events GROUP BY user_id",
        "gold/recent.sql": "-- kind: view\n"
        + header(fields(description, tags, days))
        + "SELECT user_id, n FROM gold.totals WHERE n > 1",
    }
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def land(landing: Path, name: str, lines: list[str]) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    (landing / name).write_text("".join(line + "\n" for line in lines))


def event(i: int, n: int) -> str:
    return json.dumps({"event_id": f"e{i}", "user_id": i % 3, "n": n})


def catalog_fields(lh, name: str) -> dict:
    info = lh.catalog.get(name)
    return {
        "description": info.description,
        "owner": info.owner,
        "tags": sorted(info.tags),
        "column_tags": info.column_tags,
        "retention_days": info.retention_days,
    }


def test_header_fields_reach_the_catalog_for_every_kind(lh, tmp_path):
    folder, landing = tmp_path / "p", tmp_path / "landing"
    write_pipeline(folder, "first words", "raw, demo", 30)
    land(landing, "a.jsonl", [event(i, i % 4) for i in range(6)])
    lh.write("bronze.changes", pa.table({"user_id": [1, 2], "v": ["a", "b"], "seq": [1, 1]}))
    pipeline = load_pipeline(folder, {"landing": str(landing)})
    assert sorted(d.kind for d in pipeline.datasets.values()) == [
        "append", "cdc", "files", "materialized_view", "view"
    ]
    run_pipeline(lh, pipeline)
    for name in pipeline.datasets:
        assert catalog_fields(lh, name) == {
            "description": "first words",
            "owner": "data-team",
            "tags": ["demo", "raw"],
            "column_tags": {"user_id": ["pii"]},
            "retention_days": 30,
        }, name
    assert [i.name for i in lh.tables(tag="raw")] == sorted(pipeline.datasets)
    # A header edited later reaches the catalog on the next run, even with nothing new.
    write_pipeline(folder, "second words", "curated", 60)
    pipeline = load_pipeline(folder, {"landing": str(landing)})
    report = run_pipeline(lh, pipeline)
    assert {d.status for d in report.datasets if d.kind != "view"} == {"ok", "unchanged"}
    for name in pipeline.datasets:
        got = catalog_fields(lh, name)
        assert (got["description"], got["tags"], got["retention_days"]) == (
            "second words",
            ["curated"],
            60,
        ), name


def test_table_fields_of_the_wrong_shape_are_reported_with_their_line(tmp_path):
    from lakehouse.pipeline import PipelineError

    folder = tmp_path / "p"
    (folder / "bronze").mkdir(parents=True)
    (folder / "bronze" / "raw.yml").write_text(
        "kind: files\npath: /x\ncolumn_tags: [pii]\nretention_days: soon\n"
        "description: [a, b]\nowner: 42\n"
    )
    with pytest.raises(PipelineError) as caught:
        load_pipeline(folder)
    text = str(caught.value)
    assert "raw.yml:3: column_tags maps columns to tags" in text, text
    assert "raw.yml:4: retention_days is a whole number of days" in text, text
    assert "raw.yml:5: description is a text, not list" in text, text
    assert "owner" not in text  # a number is a name too


def test_unreadable_records_and_warnings_are_quality_results(lh, tmp_path):
    from lakehouse.pipeline.quality_report import quality_overview, quality_report

    folder, landing = tmp_path / "p", tmp_path / "landing"
    write_pipeline(folder, "d", "t", 7)
    lh.write("bronze.changes", pa.table({"user_id": [1], "v": ["a"], "seq": [1]}))
    land(landing, "a.jsonl", [event(1, 1), '{"event_id": "e2", "us', event(3, 0), "not json"])
    pipeline = load_pipeline(folder, {"landing": str(landing)})
    first = run_pipeline(lh, pipeline)

    bronze = quality_report(lh, "bronze.raw")
    assert bronze["status"] == "failed" and bronze["quarantined"] == 2
    [result] = bronze["results"]
    assert (result["expectation"], result["action"], result["status"]) == (
        "readable_record",
        "quarantine",
        "failed",
    )
    assert (result["failed_rows"], result["total_rows"], result["run_id"]) == (2, 4, first.run_id)
    sample = json.loads(result["sample"])
    assert [s["file"] for s in sample] == ["a.jsonl", "a.jsonl"]
    assert all(s["reason"].startswith(("line 2", "line 4")) for s in sample), sample
    assert bronze["score"] == 50.0

    # A warn check that found rows (n = 0 in e3) is a warning, with its count.
    silver = quality_report(lh, "silver.events")
    assert silver["status"] == "warning"
    [positive] = silver["results"]
    assert (positive["status"], positive["passed"], positive["failed_rows"]) == (
        "warning",
        False,
        1,
    )
    overview = {r["table"]: r for r in quality_overview(lh)}
    assert {t: r["status"] for t, r in overview.items()} == {
        "bronze.raw": "failed",
        "silver.events": "warning",
    }
    assert (overview["silver.events"]["warnings"], overview["silver.events"]["failed"]) == (1, 0)

    # A run with no new file checks nothing; a clean file is a passed result of its run.
    run_pipeline(lh, pipeline)
    assert quality_report(lh, "bronze.raw")["results"][0]["run_id"] == first.run_id
    land(landing, "b.jsonl", [event(4, 2), event(5, 3)])
    third = run_pipeline(lh, pipeline)
    again = quality_report(lh, "bronze.raw")
    assert again["status"] == "passed" and again["results"][0]["run_id"] == third.run_id
    assert (again["results"][0]["failed_rows"], again["results"][0]["total_rows"]) == (0, 2)
    assert quality_report(lh, "silver.events")["status"] == "passed"
