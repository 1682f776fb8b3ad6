"""The serving store on real chDB: mirrors hold exactly one version of their tables,
survive kill -9 at every statement of a refresh, are kept current by the owning server
process while other processes write, and are reached from any process."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from lakehouse.errors import LakehouseError
from lakehouse.serving.mirrors import Serving
from tests.helpers.mirrors import no_null_lists
from tests.helpers.server import start_server

ROOT = Path(__file__).resolve().parents[1]
HELPERS = ROOT / "tests" / "helpers"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _rows(table: pa.Table, order: list[str]) -> list[tuple[object, ...]]:
    rows = [tuple(r[c] for c in table.column_names) for r in table.to_pylist()]
    keys = [table.column_names.index(c) for c in order]
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in keys))


def _same(lh: Lakehouse, serving: Serving, name: str, order: list[str]) -> None:
    lake = no_null_lists(lh.sql(f"SELECT * FROM {name}").to_arrow())
    mirror = serving.sql(f"SELECT * FROM {name}")
    assert mirror.column_names == lake.column_names
    assert _rows(mirror, order) == _rows(lake, order)


@pytest.fixture
def lh(tmp_path: Path) -> Lakehouse:
    return Lakehouse(tmp_path / "warehouse")


def _kinds() -> pa.Table:
    utc = dt.UTC
    return pa.table(
        {
            "day": [dt.date(2026, 1, 1), dt.date(2026, 1, 2), None],
            "at": [
                dt.datetime(2026, 1, 1, 12, tzinfo=utc),
                None,
                dt.datetime(2026, 1, 3, tzinfo=utc),
            ],
            "users": pa.array([3, None, 5], pa.int64()),
            "rate": [0.25, None, 1.0],
            "amount": pa.array([Decimal("1.10"), None, Decimal("3.30")], pa.decimal128(10, 2)),
            "page": ["/a", "/b", None],
            "ok": [True, False, None],
            "tags": [["x", "y"], [], None],
            "who": [{"id": 1, "name": "a"}, None, {"id": 3, "name": None}],
        }
    )


def test_a_mirror_holds_exactly_its_table_version(lh: Lakehouse) -> None:
    lh.write("gold.kinds", _kinds())
    lh.write(
        "gold.parts",
        pa.table({"day": [dt.date(2026, 1, d) for d in (1, 2, 3)], "page": ["/a", "/b", "/a"]}),
        partition_by=["page"],
    )
    lh.write("realtime.windows", pa.table({"agg": ["x", "x", "y"], "n": [1, 2, 3]}))
    lh.create_view("realtime.x_only", "SELECT n FROM realtime.windows WHERE agg = 'x'")
    lh.write("silver.hidden", pa.table({"a": [1]}))  # not mirrored: silver, untagged
    serving = lh.serving
    try:
        done = serving.refresh()
        assert {d["table"] for d in done} == {
            "gold.kinds",
            "gold.parts",
            "realtime.windows",
            "realtime.x_only",
        }
        _same(lh, serving, "gold.kinds", ["users"])
        _same(lh, serving, "gold.parts", ["day"])
        _same(lh, serving, "realtime.x_only", ["n"])
        states = {s["table"]: s for s in serving.status()}
        assert states["gold.kinds"]["state"] == "current"
        assert states["gold.kinds"]["rows"] == 3
        assert states["realtime.x_only"]["source"] == "realtime.windows"

        lh.write("gold.kinds", _kinds().slice(0, 1))  # a new version: the mirror lags
        behind = {s["table"]: s for s in serving.status()}["gold.kinds"]
        assert behind["state"] == "behind"
        assert behind["delta_version"] == behind["serving_version"] + 1
        assert behind["lag_seconds"] >= 0
        assert serving.health()["status"] == "ok"  # lagging less than its limit
        assert [d["table"] for d in serving.refresh("gold.kinds")] == ["gold.kinds"]
        _same(lh, serving, "gold.kinds", ["users"])
        assert serving.refresh() == []  # nothing changed since

        with pytest.raises(LakehouseError, match="not mirrored"):
            serving.refresh("silver.hidden")
        lh.table("silver.hidden").set(tags=["serving"])
        lh.table("gold.parts").set(tags=["no-serving"])
        serving.refresh()
        held = serving.held()
        assert "silver.hidden" in held and "gold.parts" not in held
        params = serving.sql(
            "SELECT count() AS n FROM gold.kinds WHERE users > {m:Int64}", {"m": 0}
        )
        assert params.column("n").to_pylist() == [3]  # 3, 5 and the 3 appended
    finally:
        serving.close()


def test_kill_9_at_every_statement_of_a_refresh(lh: Lakehouse) -> None:
    lh.write(
        "gold.events", pa.table({"id": list(range(1000)), "v": [i * 0.5 for i in range(1000)]})
    )
    lh.write("realtime.windows", pa.table({"agg": ["x"], "n": [1]}))
    lh.create_view("realtime.per_agg", "SELECT agg, sum(n) AS n FROM realtime.windows GROUP BY agg")
    helper = [sys.executable, str(HELPERS / "serving_killed_at.py")]
    counted = subprocess.run(
        [*helper, "0", str(lh.root)], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert counted.returncode == 0, counted.stderr
    statements = int(counted.stdout.split()[-1])
    assert statements >= 10
    for n in range(1, statements + 1):
        batch = pa.table({"id": [1000 + n], "v": [float(n)]})
        lh.write("gold.events", batch)
        lh.write("realtime.windows", pa.table({"agg": ["y"], "n": [n]}))
        killed = subprocess.run(
            [*helper, str(n), str(lh.root)], env=_env(), capture_output=True, text=True, timeout=300
        )
        assert killed.returncode == -9, killed.stdout + killed.stderr
        serving = lh.serving
        try:
            # Whatever the kill left, each mirror is one whole version of its table.
            for name, held in serving.held().items():
                table = "gold.events" if name == "gold.events" else "realtime.windows"
                version = held.versions[table]
                if name == "gold.events":
                    expected = lh.sql(
                        f"SELECT count(*) AS n FROM gold.events VERSION AS OF {version}"
                    )
                    assert held.rows == expected.to_arrow().column("n")[0].as_py()
                    got = serving.sql("SELECT count() AS n FROM gold.events")
                    assert got.column("n")[0].as_py() == held.rows
            serving.refresh()
            _same(lh, serving, "gold.events", ["id"])
            _same(lh, serving, "realtime.per_agg", ["agg"])
            assert all(s["state"] == "current" for s in serving.status())
        finally:
            serving.close()


OWNER = """
import sys, time
from lakehouse import Lakehouse
lh = Lakehouse(sys.argv[1])
lh.serving.own(interval=0.1)
print("owning", flush=True)
sys.stdin.read()  # until the test closes our input
lh.serving.close()
"""


def test_other_processes_reach_the_owners_store(lh: Lakehouse) -> None:
    lh.write("gold.kpi", pa.table({"day": [dt.date(2026, 1, 1)], "n": [1]}))
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(lh.root)],
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "owning"
        serving = lh.serving
        # The owner pulls each new version itself; this process only asks.
        for n in range(2, 6):
            lh.write("gold.kpi", pa.table({"day": [dt.date(2026, 1, n)], "n": [n]}))
            _wait_current(serving, "gold.kpi", lh.table("gold.kpi").version)
            _same(lh, serving, "gold.kpi", ["day"])
        assert serving.refresh() == []  # asked of the owner: nothing to do
        # Over the kept connection: a fresh read, then answers kept in this process.
        total = "SELECT sum(n) AS s FROM gold.kpi"
        assert serving.sql(total, fresh=True).to_pylist() == [{"s": 15}]
        assert [serving.sql(total).to_pylist() for _ in range(3)] == [[{"s": 15}]] * 3
        assert owner.stdin is not None
        owner.stdin.close()
        assert owner.wait(timeout=60) == 0
        # The owner gone, the next call opens the store itself: no error, the same rows.
        lh.write("gold.kpi", pa.table({"day": [dt.date(2026, 1, 6)], "n": [6]}))
        assert serving.refresh()[0]["table"] == "gold.kpi"
        assert serving.sql(total).to_pylist() == [{"s": 21}]
        status = subprocess.run(
            [sys.executable, "-m", "lakehouse.cli", "--warehouse", str(lh.root)]
            + ["serving", "status", "--format", "json"],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)[0]["state"] == "current"
    finally:
        assert owner.stdin is not None
        owner.stdin.close()
        try:
            owner.wait(timeout=30)
        except subprocess.TimeoutExpired:
            owner.kill()
            owner.wait()


def _wait_current(serving: Serving, table: str, version: int, timeout: float = 60) -> None:
    """Until the mirror of ``table`` holds ``version`` (the owner refreshes it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = serving.held().get(table)
        if held is not None and held.versions.get(table) == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"{table} v{version} never reached the serving store")


WRITER = """
import sys
import pyarrow as pa
from lakehouse import Lakehouse
lh = Lakehouse(sys.argv[1])
table, start, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for i in range(start, start + count):
    lh.write(table, pa.table({"id": list(range(i * 100, i * 100 + 100)), "k": [i] * 100}))
"""


def test_a_server_keeps_mirrors_exact_while_two_writers_write(lh: Lakehouse) -> None:
    lh.write("gold.a", pa.table({"id": [-1], "k": [-1]}))
    lh.write("realtime.b", pa.table({"id": [-1], "k": [-1]}))
    server = start_server(Path(lh.root), args=["--workers", "2"])
    try:
        writers = [
            subprocess.Popen([sys.executable, "-c", WRITER, str(lh.root), t, "0", "25"], env=_env())
            for t in ("gold.a", "realtime.b")
        ]
        for w in writers:
            assert w.wait(timeout=300) == 0
        serving = lh.serving
        for table in ("gold.a", "realtime.b"):
            _wait_current(serving, table, lh.table(table).version)
            _same(lh, serving, table, ["id"])
            got = serving.sql(f"SELECT count() AS n, countDistinct(id) AS d FROM {table}")
            assert got.to_pylist() == [{"n": 2501, "d": 2501}]  # none lost, none doubled
        login = server.login_token
        with server.client(login) as client:
            answer = client.get("/serving")
            assert answer.status_code == 200, answer.text
            mirrors = {m["table"]: m for m in answer.json()["mirrors"]}
            assert mirrors["gold.a"]["state"] == "current"
            assert client.get("/health").json()["serving"]["status"] == "ok"
            refreshed = client.post("/serving/refresh", json={"table": "gold.a"})
            assert refreshed.status_code == 200 and refreshed.json() == {"refreshed": []}
    finally:
        server.stop()


def test_an_unreachable_server_is_said_plainly(lh: Lakehouse) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    lh.write("gold.kpi", pa.table({"n": [1]}))
    serving = Serving(lh.storage, lh.engine, url=f"http://127.0.0.1:{port}")
    with pytest.raises(LakehouseError, match="cannot be reached") as caught:
        serving.sql("SELECT 1")
    assert "LAKEHOUSE_SERVING_URL" in (caught.value.hint or "")
    health = serving.health()
    assert health["status"] == "degraded" and "cannot be reached" in health["message"]
    assert not serving.covers(["gold.kpi"])
    with pytest.raises(LakehouseError, match="not a ClickHouse server address"):
        Serving(lh.storage, lh.engine, url="ftp://nowhere")


def test_every_demo_panel_reads_the_same_on_both_engines(demo_warehouse: Path) -> None:
    """Each panel of the platform dashboard: the serving store's answer equals the
    lakehouse engine's (values compared as numbers or text, in order)."""
    from lakehouse.dashboards.engine import read_serving
    from lakehouse.dashboards.params import bind
    from lakehouse.dashboards.reader import read_dashboard
    from lakehouse.dashboards.run import Caller, run_panel, values_for

    lh = Lakehouse(demo_warehouse)
    dashboard, _ = read_dashboard(ROOT / "dashboards" / "platform.yaml")
    assert dashboard is not None
    with lh.serving.owning():
        lh.serving.refresh()
        compared = 0
        for given in ({}, {"page": "/home"}):
            values = values_for(lh, dashboard, Caller(), given)
            for panel in dashboard.panels:
                if any(t.startswith("realtime.") for t in _tables(panel.sql)):
                    continue  # no stream ran in the demo warehouse
                result = run_panel(lh, panel, values, Caller())
                assert result.engine == "serving", (panel.id, result.note)
                lake = lh.engine.safe_query(panel.sql, params=bind(panel.sql, values) or None)
                mirror, _ = read_serving(lh, panel.sql, bind(panel.sql, values), 10_000)
                assert _values(mirror) == _values(lake.table), panel.id
                compared += 1
        assert compared >= 10


def _tables(sql: str) -> list[str]:
    from lakehouse.sql.names import find_references

    return [r.name for r in find_references(sql)]


def _values(table: pa.Table) -> list[tuple[object, ...]]:
    def norm(v: object) -> object:
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int | float | Decimal):
            return round(float(v), 6)
        return str(v)

    return [tuple(norm(v) for v in row.values()) for row in table.to_pylist()]


def test_a_panel_falls_back_to_the_lakehouse_when_the_serving_server_is_down(
    lh: Lakehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from lakehouse.dashboards.reader import read_dashboard
    from lakehouse.dashboards.run import Caller, run_panel, values_for

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lh.write("gold.kpi", pa.table({"n": [1, 2, 3]}))
    folder = Path(lh.root).parent / "boards"
    folder.mkdir()
    (folder / "k.yaml").write_text(
        "title: K\npanels:\n  - id: total\n    title: Total\n    kind: stat\n"
        "    sql: SELECT sum(n) AS total FROM gold.kpi\n"
    )
    dashboard, problems = read_dashboard(folder / "k.yaml")
    assert dashboard is not None, problems
    monkeypatch.setenv("LAKEHOUSE_SERVING_URL", f"http://127.0.0.1:{port}")
    down = Lakehouse(lh.root)
    result = run_panel(down, dashboard.panels[0], values_for(down, dashboard, Caller()), Caller())
    assert result.error is None and result.engine == "lakehouse"
    assert result.table is not None and result.table.to_pylist() == [{"total": 6}]
    assert down.serving.health()["status"] == "degraded"


def test_the_owner_reuses_answers_until_a_mirror_changes(lh: Lakehouse) -> None:
    """Many readers of one panel: the owner runs a statement once per moment, and never
    gives an answer read before a refresh that changed a mirror."""
    import threading

    lh.write("gold.kpi", pa.table({"n": [1]}))
    serving = lh.serving
    serving.own(interval=3600)  # this test refreshes by hand
    try:
        results = serving._results
        assert results is not None
        count = "SELECT count(*) AS c, sum(n) AS s FROM gold.kpi"
        assert serving.sql(count).to_pylist() == [{"c": 1, "s": 1}]
        before = results.misses
        answers: list[object] = []
        readers = [
            threading.Thread(target=lambda: answers.append(serving.sql(count).to_pylist()))
            for _ in range(20)
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        assert answers == [[{"c": 1, "s": 1}]] * 20
        assert results.misses - before <= 1  # at most once more, if the moment passed
        lh.write("gold.kpi", pa.table({"n": [2]}))
        assert [d["table"] for d in serving.refresh()] == ["gold.kpi"]
        assert serving.sql(count).to_pylist() == [{"c": 2, "s": 3}]  # not the kept one
        before = results.hits
        assert serving.sql(count, fresh=True).to_pylist() == [{"c": 2, "s": 3}]
        assert results.hits == before  # read from the store, not the answer kept
    finally:
        serving.close()
