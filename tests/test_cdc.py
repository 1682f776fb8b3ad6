"""CDC apply: SCD type 1 and 2 from change events delivered late, out of order and twice,
checked against a replay of the same changes in order, once."""

from __future__ import annotations

import random
import textwrap

import pyarrow as pa

from lakehouse.pipeline import load_pipeline, run_pipeline

HEADER = """
    -- kind: cdc
    -- keys: [id]
    -- sequence_by: seq
    -- delete_when: op = 'delete'
    -- except_columns: [op]
"""
QUERY = "SELECT id, op, name, seq FROM bronze.changes"


def history_of_changes(keys: int, seed: int) -> list[dict]:
    """Changes as a database emits them, in order: inserts, updates, deletes, re-inserts."""
    rng = random.Random(seed)
    live: dict[int, str] = {}
    out = []
    for seq in range(1, 400):
        key = rng.randint(1, keys)
        if key not in live:
            op, name = "insert", f"n{seq}"
        elif rng.random() < 0.2:
            op, name = "delete", None
        else:
            op, name = "update", f"n{seq}"
        if op == "delete":
            del live[key]
        else:
            live[key] = name
        out.append({"id": key, "op": op, "name": name, "seq": seq})
    return out


def expected_state(changes: list[dict]) -> list[tuple]:
    state: dict[int, dict] = {}
    for c in sorted(changes, key=lambda c: c["seq"]):
        if c["op"] == "delete":
            state.pop(c["id"], None)
        else:
            state[c["id"]] = c
    return sorted((c["id"], c["name"], c["seq"]) for c in state.values())


def expected_history(changes: list[dict]) -> list[tuple]:
    rows = []
    by_key: dict[int, list[dict]] = {}
    once = {c["seq"]: c for c in changes}.values()  # a change delivered twice counts once
    for c in sorted(once, key=lambda c: c["seq"]):
        by_key.setdefault(c["id"], []).append(c)
    for key, events in by_key.items():
        for i, c in enumerate(events):
            if c["op"] == "delete":
                continue
            nxt = events[i + 1]["seq"] if i + 1 < len(events) else None
            rows.append((key, c["name"], c["seq"], c["seq"], nxt, nxt is None))
    return sorted(rows, key=repr)


def deliver(lh, changes: list[dict], batches: int, seed: int) -> list[list[dict]]:
    """Shuffled, with a tenth delivered twice, split into batches (late events land in a
    later batch than events that followed them)."""
    rng = random.Random(seed)
    noisy = changes + rng.sample(changes, len(changes) // 10)
    rng.shuffle(noisy)
    size = len(noisy) // batches + 1
    return [noisy[i : i + size] for i in range(0, len(noisy), size)]


def batch_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [("id", pa.int64()), ("op", pa.string()), ("name", pa.string()), ("seq", pa.int64())]
        ),
    )


def test_scd1_and_scd2_with_late_duplicate_out_of_order_events(lh, tmp_path):
    folder = tmp_path / "cdc"
    (folder / "silver").mkdir(parents=True)
    (folder / "silver" / "state.sql").write_text(textwrap.dedent(HEADER).lstrip() + QUERY)
    (folder / "silver" / "history.sql").write_text(
        textwrap.dedent(HEADER).lstrip() + "-- scd: 2\n" + QUERY
    )
    changes = history_of_changes(keys=25, seed=3)
    pipeline = load_pipeline(folder)
    delivered: list[dict] = []
    for i, batch in enumerate(deliver(lh, changes, batches=5, seed=4)):
        lh.write("bronze.changes", batch_table(batch))
        delivered += batch
        report = run_pipeline(lh, pipeline)
        if i:
            assert all("key(s) with new changes" in d.strategy for d in report.datasets)
        state = lh.sql("SELECT id, name, seq FROM silver.state ORDER BY id").rows()
        assert state == expected_state(delivered), f"after batch {i}"
        history = sorted(
            lh.sql(
                "SELECT id, name, seq, valid_from, valid_to, is_current FROM silver.history"
            ).rows(),
            key=repr,
        )
        assert history == expected_history(delivered), f"after batch {i}"
    assert len(delivered) > len(changes)  # duplicates were delivered
    assert lh.table("silver.state").schema.names == ["id", "name", "seq"]


def test_scd2_versions_sharing_a_valid_time_survive_incremental_runs(lh, tmp_path):
    """Several changes of one row in one transaction share their commit time: each is
    still a version of its own, in an incremental run as in a full refresh."""
    folder = tmp_path / "cdc"
    (folder / "silver").mkdir(parents=True)
    header = textwrap.dedent(HEADER).lstrip() + "-- scd: 2\n-- valid_time: changed\n"
    (folder / "silver" / "history.sql").write_text(
        header + "SELECT id, op, name, seq, changed FROM bronze.timed"
    )
    pipeline = load_pipeline(folder)
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("op", pa.string()),
            ("name", pa.string()),
            ("seq", pa.int64()),
            ("changed", pa.int64()),
        ]
    )
    first = [{"id": 1, "op": "insert", "name": "a", "seq": 1, "changed": 100}]
    lh.write("bronze.timed", pa.Table.from_pylist(first, schema=schema))
    run_pipeline(lh, pipeline)
    same_transaction = [
        {"id": 1, "op": "update", "name": "b", "seq": 2, "changed": 200},
        {"id": 1, "op": "update", "name": "c", "seq": 3, "changed": 200},
        {"id": 2, "op": "insert", "name": "x", "seq": 4, "changed": 200},
    ]
    lh.write("bronze.timed", pa.Table.from_pylist(same_transaction, schema=schema))
    report = run_pipeline(lh, pipeline)
    assert "key(s) with new changes" in report.datasets[0].strategy
    query = "SELECT id, name, seq, valid_from, valid_to, is_current FROM silver.history"
    incremental = sorted(lh.sql(query).rows())
    assert [r[1] for r in incremental] == ["a", "b", "c", "x"]
    run_pipeline(lh, pipeline, full_refresh=True)
    assert sorted(lh.sql(query).rows()) == incremental


def test_scd1_keeps_the_change_scd2_keeps_when_sequences_tie(lh, tmp_path):
    """A change delivered twice shares its sequence but not every column (here the file it
    came from); a change may have no sequence. SCD 1 keeps the same change as SCD 2's
    current row, in a full run and in an incremental one."""
    folder = tmp_path / "cdc"
    (folder / "silver").mkdir(parents=True)
    query = "SELECT id, op, name, seq, src FROM bronze.twice"
    (folder / "silver" / "state.sql").write_text(textwrap.dedent(HEADER).lstrip() + query)
    (folder / "silver" / "history.sql").write_text(
        textwrap.dedent(HEADER).lstrip() + "-- scd: 2\n" + query
    )
    pipeline = load_pipeline(folder)
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("op", pa.string()),
            ("name", pa.string()),
            ("seq", pa.int64()),
            ("src", pa.string()),
        ]
    )
    rng = random.Random(8)
    rows = []
    for key in range(1, 41):
        for seq in range(1, rng.randint(2, 4)):
            rows.append({"id": key, "op": "update", "name": f"{key}-{seq}", "seq": seq})
        if key % 5 == 0:  # a change without a sequence
            rows.append({"id": key, "op": "update", "name": f"{key}-none", "seq": None})
    copies = [{**r} for r in rng.sample(rows, 30)]  # delivered again, from another file
    for batch, part in enumerate((rows + copies[:15], copies[15:])):
        rng.shuffle(part)
        for r in part:
            r["src"] = f"file-{batch}-{rng.randint(0, 9)}"
        lh.write("bronze.twice", pa.Table.from_pylist(part, schema=schema))
        report = run_pipeline(lh, pipeline)  # all changes, then the keys with new ones
        assert all(("key(s)" in d.strategy) == (batch == 1) for d in report.datasets)
        state = lh.sql("SELECT id, name, seq, src FROM silver.state ORDER BY id").rows()
        current = lh.sql(
            "SELECT id, name, seq, src FROM silver.history WHERE is_current ORDER BY id"
        ).rows()
        assert state == current, f"batch {batch}"
        assert len(state) == 40


def test_scd2_keeps_one_version_of_a_change_without_a_sequence(lh, tmp_path):
    """A change with no sequence is a version of its key too: an incremental run that
    recomputes the key's versions finds it in the table (a NULL merge key matches a NULL)
    instead of adding it again."""
    folder = tmp_path / "cdc"
    (folder / "silver").mkdir(parents=True)
    (folder / "silver" / "history.sql").write_text(
        textwrap.dedent(HEADER).lstrip() + "-- scd: 2\n" + QUERY
    )
    pipeline = load_pipeline(folder)
    first = [
        {"id": 1, "op": "insert", "name": "none", "seq": None},
        {"id": 1, "op": "update", "name": "a", "seq": 1},
    ]
    lh.write("bronze.changes", batch_table(first))
    run_pipeline(lh, pipeline)
    query = "SELECT name, seq, is_current FROM silver.history ORDER BY seq NULLS FIRST"
    assert lh.sql(query).rows() == [("none", None, False), ("a", 1, True)]
    for seq in (2, 3):  # each run recomputes key 1's versions, the unsequenced one included
        change = {"id": 1, "op": "update", "name": "b", "seq": seq}
        lh.write("bronze.changes", batch_table([change]))
        run_pipeline(lh, pipeline)
    assert lh.sql(query).rows() == [
        ("none", None, False), ("a", 1, False), ("b", 2, False), ("b", 3, True)
    ]
