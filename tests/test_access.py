"""Tokens, roles, grants and PII masking, on a real warehouse and catalog; the CLI commands
as real processes of the installed ``lakehouse`` script."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakehouse import Lakehouse
from lakehouse.access import ROLES, Access, Principal
from lakehouse.errors import AccessDeniedError, AuthenticationError, LakehouseError
from lakehouse.names import LAYERS
from tests.postgres import postgres_server

LAKEHOUSE = Path(sys.executable).with_name("lakehouse")
PROPAGATION = 2.0  # a change made by another process is seen within this many seconds


@pytest.fixture
def lh(tmp_path: Path) -> Lakehouse:
    lh = Lakehouse(tmp_path / "warehouse")
    rows = [{"id": 1, "email": "ann@example.com", "phone": "555", "country": "fr"}]
    lh.write("silver.users", rows, column_tags={"email": ["pii"], "phone": ["PII", "contact"]})
    lh.write("silver.orders", [{"order_id": 1, "user_id": 1}])
    lh.write("bronze.events", [{"id": 1}])
    lh.write("gold.revenue", [{"country": "fr", "revenue": 1.0}])
    lh.write("realtime.clicks", [{"id": 1}])
    lh.write("system.jobs", [{"id": 1}])
    return lh


def who(role: str, name: str | None = None) -> Principal:
    return Principal(name or f"{role}1", role)


def eventually(check, seconds: float = PROPAGATION + 1.0) -> float:
    """Seconds until ``check()`` held; fails if it did not within ``seconds``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "the change was not seen in time"
        time.sleep(0.02)
    return time.monotonic() - started


# -- tokens ------------------------------------------------------------------------------------


def test_token_authenticates_as_its_name_and_role(lh: Lakehouse) -> None:
    access = Access(lh)
    token = access.create_token("alice", "analyst")
    assert token.startswith("lh_") and len(token) > 30
    assert access.authenticate(token) == Principal("alice", "analyst")
    # Another object on the same folder (another process, in effect) knows it at once.
    assert Access(Lakehouse(lh.root)).authenticate(token) == Principal("alice", "analyst")
    assert access.create_token("bob", "viewer") != token


@pytest.mark.parametrize(
    ("token", "message"),
    [(None, "no token"), ("", "no token"), ("lh_wrong", "unknown token"), ("x", "unknown token")],
)
def test_missing_and_unknown_tokens_are_refused(lh: Lakehouse, token, message) -> None:
    access = Access(lh)
    access.create_token("alice", "analyst")
    with pytest.raises(AuthenticationError) as caught:
        access.authenticate(token)
    assert message in caught.value.message
    assert "lakehouse token create" in caught.value.hint


def test_a_token_created_elsewhere_works_at_once(lh: Lakehouse) -> None:
    access = Access(lh)
    access.authenticate(access.create_token("alice", "analyst"))  # the snapshot is loaded
    token = Access(Lakehouse(lh.root)).create_token("carol", "engineer")
    assert access.authenticate(token) == Principal("carol", "engineer")


def test_revoked_token_is_refused(lh: Lakehouse) -> None:
    access = Access(lh)
    token = access.create_token("alice", "analyst")
    access.authenticate(token)
    access.revoke_token("alice")
    with pytest.raises(AuthenticationError) as caught:
        access.authenticate(token)
    assert "'alice' was revoked" in caught.value.message
    assert "lakehouse token create" in caught.value.hint
    with pytest.raises(LakehouseError, match="revoked already"):
        access.revoke_token("alice")
    with pytest.raises(LakehouseError, match="no token named 'nobody'"):
        access.revoke_token("nobody")


def test_revoke_by_another_lakehouse_takes_effect_within_two_seconds(lh: Lakehouse) -> None:
    server = Access(lh)
    token = server.create_token("alice", "analyst")
    assert server.authenticate(token).name == "alice"  # cached now

    Access(Lakehouse(lh.root)).revoke_token("alice")

    def refused() -> bool:
        try:
            server.authenticate(token)
        except AuthenticationError as exc:
            assert "revoked" in exc.message
            return True
        return False

    assert eventually(refused) <= PROPAGATION


def test_token_names_are_unique_among_live_tokens(lh: Lakehouse) -> None:
    access = Access(lh)
    first = access.create_token("alice", "analyst")
    with pytest.raises(LakehouseError) as caught:
        Access(Lakehouse(lh.root)).create_token("alice", "viewer")
    assert "'alice' exists already" in caught.value.message
    assert "lakehouse token revoke alice" in caught.value.hint
    access.revoke_token("alice")
    second = access.create_token("alice", "engineer")  # the name is free again
    assert access.authenticate(second) == Principal("alice", "engineer")
    with pytest.raises(AuthenticationError):
        access.authenticate(first)
    listed = [(t["name"], t["role"], t["revoked_at"] is None) for t in access.list_tokens()]
    assert listed == [("alice", "analyst", False), ("alice", "engineer", True)]


def test_bad_roles_and_names_are_refused(lh: Lakehouse) -> None:
    access = Access(lh)
    with pytest.raises(LakehouseError) as caught:
        access.create_token("alice", "boss")
    assert "unknown role 'boss'" in caught.value.message
    assert all(role in caught.value.hint for role in ROLES)
    for name in ("", "two words", "analyst", "-dash", "x" * 101):
        with pytest.raises(LakehouseError):
            access.create_token(name, "viewer")
    assert access.list_tokens() == []


def test_the_secret_is_not_stored_only_its_hash(lh: Lakehouse) -> None:
    access = Access(lh)
    token = access.create_token("alice", "analyst")
    files = [Path(lh.root) / "_catalog.db", Path(lh.root) / "_catalog.db-wal"]
    stored = b"".join(f.read_bytes() for f in files if f.exists())
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored  # the right file
    assert token.encode() not in stored
    assert token.removeprefix("lh_").encode() not in stored
    listed = access.list_tokens()
    assert set(listed[0]) == {"name", "role", "created_at", "revoked_at", "last_used_at"}
    assert token not in repr(listed)


def test_last_use_is_recorded(lh: Lakehouse) -> None:
    access = Access(lh)
    token = access.create_token("alice", "analyst")
    assert access.list_tokens()[0]["last_used_at"] is None
    before = time.time()
    access.authenticate(token)
    eventually(lambda: access.list_tokens()[0]["last_used_at"] is not None, 5.0)
    assert access.list_tokens()[0]["last_used_at"].timestamp() >= before - 1


def test_session_tokens_live_in_memory_only(lh: Lakehouse) -> None:
    access = Access(lh)
    access.add_session_token("lh_session-secret", Principal("admin (login)", "admin"))
    assert access.authenticate("lh_session-secret") == Principal("admin (login)", "admin")
    assert access.list_tokens() == []
    with pytest.raises(AuthenticationError, match="unknown token"):
        Access(Lakehouse(lh.root)).authenticate("lh_session-secret")
    with pytest.raises(LakehouseError, match="unknown role"):
        access.add_session_token("lh_other", Principal("x", "root"))


# -- roles -------------------------------------------------------------------------------------

DEFAULT_READS = {
    "admin": set(LAYERS),
    "engineer": set(LAYERS),
    "analyst": {"silver", "gold", "realtime"},
    "viewer": {"gold", "realtime"},
}
TABLE_OF_LAYER = {
    "bronze": "bronze.events",
    "silver": "silver.users",
    "gold": "gold.revenue",
    "system": "system.audit_log",
    "realtime": "realtime.clicks",
}


@pytest.mark.parametrize("role", list(ROLES))
def test_default_reads_per_role_and_layer(lh: Lakehouse, role: str) -> None:
    access = Access(lh)
    p = who(role)
    for layer, table in TABLE_OF_LAYER.items():
        assert access.can_read(p, table) == (layer in DEFAULT_READS[role]), (role, table)
    names = ["bronze.events", "silver.users", "gold.revenue", "system.jobs", "realtime.clicks"]
    expected = [n for n in names if n.split(".")[0] in DEFAULT_READS[role]]
    assert access.readable(p, names) == expected
    assert not access.can_read(Principal("x", "nobody"), "gold.revenue")


def test_actions_per_role(lh: Lakehouse) -> None:
    access = Access(lh)
    allowed = {
        "admin": {"query", "run_pipeline", "manage_access", "read_audit"},
        "engineer": {"query", "run_pipeline"},
        "analyst": {"query"},
        "viewer": {"query"},
    }
    for role, actions in allowed.items():
        for action in ("query", "run_pipeline", "manage_access", "read_audit"):
            assert access.can(who(role), action) == (action in actions), (role, action)
    with pytest.raises(LakehouseError, match="unknown action 'fly'"):
        access.can(who("admin"), "fly")


def test_require_names_principal_role_and_action(lh: Lakehouse) -> None:
    access = Access(lh)
    access.require(who("engineer"), "run_pipeline")
    with pytest.raises(AccessDeniedError) as caught:
        access.require(Principal("alice", "analyst"), "run_pipeline")
    message, hint = caught.value.message, caught.value.hint
    assert "alice" in message and "analyst" in message and "run_pipeline" in message
    assert "admin" in hint and "engineer" in hint and "lakehouse token create" in hint
    with pytest.raises(AccessDeniedError) as caught:
        access.require(Principal("eve", "engineer"), "manage_access")
    assert "eve (engineer) may not manage_access" in caught.value.message
    assert "--role admin" in caught.value.hint


# -- grants ------------------------------------------------------------------------------------


def test_grant_read_on_a_layer_to_a_role(lh: Lakehouse) -> None:
    access = Access(lh)
    analyst, other_analyst, viewer = who("analyst"), who("analyst", "ann"), who("viewer")
    assert not access.can_read(analyst, "bronze.events")
    access.grant("read", "bronze", "analyst")
    assert access.can_read(analyst, "bronze.events")
    assert access.can_read(other_analyst, "bronze.events")
    assert not access.can_read(viewer, "bronze.events")
    assert not access.can_read(analyst, "system.jobs")
    access.revoke("read", "bronze", "analyst")
    assert not access.can_read(analyst, "bronze.events")


def test_grant_read_on_a_table_to_a_token(lh: Lakehouse) -> None:
    access = Access(lh)
    access.create_token("vic", "viewer")
    vic, other_viewer = Principal("vic", "viewer"), who("viewer")
    access.grant("read", "silver.users", "vic")
    assert access.can_read(vic, "silver.users")
    assert not access.can_read(vic, "silver.orders")
    assert not access.can_read(other_viewer, "silver.users")
    listed = access.grants()
    assert [(g["privilege"], g["on"], g["to"]) for g in listed] == [("read", "silver.users", "vic")]
    assert listed[0]["granted_at"].tzinfo is not None
    access.grant("read", "silver.users", "vic")  # granting twice changes nothing
    assert len(access.grants()) == 1
    access.revoke("read", "silver.users", "vic")
    assert not access.can_read(vic, "silver.users")
    assert access.grants() == []


def test_grant_read_on_a_table_to_a_role_and_a_layer_to_a_token(lh: Lakehouse) -> None:
    access = Access(lh)
    access.create_token("vic", "viewer")
    access.grant("read", "silver.orders", "viewer")
    access.grant("read", "system", "vic")
    assert access.can_read(who("viewer"), "silver.orders")
    assert not access.can_read(who("viewer"), "silver.users")
    assert access.can_read(Principal("vic", "viewer"), "system.audit_log")
    assert not access.can_read(who("viewer"), "system.audit_log")


def test_grants_made_elsewhere_are_seen_within_two_seconds(lh: Lakehouse) -> None:
    server = Access(lh)
    analyst = who("analyst")
    assert not server.can_read(analyst, "bronze.events")  # the snapshot is loaded
    other = Access(Lakehouse(lh.root))
    other.grant("read", "bronze.events", "analyst")
    assert eventually(lambda: server.can_read(analyst, "bronze.events")) <= PROPAGATION
    other.revoke("read", "bronze.events", "analyst")
    assert eventually(lambda: not server.can_read(analyst, "bronze.events")) <= PROPAGATION


def test_bad_grants_say_what_is_allowed(lh: Lakehouse) -> None:
    access = Access(lh)
    with pytest.raises(LakehouseError) as caught:
        access.grant("write", "bronze", "analyst")
    assert "unknown privilege 'write'" in caught.value.message
    assert "read" in caught.value.hint and "pii" in caught.value.hint
    with pytest.raises(LakehouseError) as caught:
        access.grant("read", "platinum", "analyst")
    assert "platinum" in caught.value.message and "bronze" in caught.value.hint
    with pytest.raises(LakehouseError) as caught:
        access.grant("read", "gold.Bad-Name", "analyst")
    assert "gold.Bad-Name" in caught.value.message
    with pytest.raises(LakehouseError) as caught:
        access.grant("read", "bronze", "nobody")
    assert "'nobody'" in caught.value.message
    assert all(role in caught.value.hint for role in ROLES)
    with pytest.raises(LakehouseError) as caught:
        access.revoke("read", "bronze", "analyst")
    assert "no grant of read on bronze to analyst" in caught.value.message
    with pytest.raises(LakehouseError) as caught:
        access.revoke("read", "silver", "analyst")
    assert "role's defaults" in caught.value.hint
    assert access.grants() == []


# -- PII masking -------------------------------------------------------------------------------


def test_pii_columns_are_masked_by_role(lh: Lakehouse) -> None:
    access = Access(lh)
    assert access.masked_columns(who("admin"), "silver.users") == []
    assert access.masked_columns(who("engineer"), "silver.users") == []
    assert access.masked_columns(who("analyst"), "silver.users") == ["email", "phone"]
    assert access.masked_columns(who("viewer"), "silver.users") == ["email", "phone"]
    assert access.masked_columns(who("analyst"), "silver.orders") == []
    assert access.masked_columns(who("analyst"), "silver.missing") == []


def test_pii_grants_unmask(lh: Lakehouse) -> None:
    access = Access(lh)
    access.create_token("ann", "analyst")
    ann, analyst, viewer = Principal("ann", "analyst"), who("analyst"), who("viewer")
    access.grant("pii", "silver.users", "ann")
    assert access.masked_columns(ann, "silver.users") == []
    assert access.masked_columns(analyst, "silver.users") == ["email", "phone"]
    access.grant("pii", "silver", "analyst")
    assert access.masked_columns(analyst, "silver.users") == []
    assert access.masked_columns(viewer, "silver.users") == ["email", "phone"]
    access.revoke("pii", "silver", "analyst")
    access.revoke("pii", "silver.users", "ann")
    assert access.masked_columns(ann, "silver.users") == ["email", "phone"]
    # A pii grant does not give read.
    access.grant("pii", "bronze", "viewer")
    assert not access.can_read(viewer, "bronze.events")


def test_new_tables_and_new_tags_are_masked(lh: Lakehouse) -> None:
    access = Access(lh)
    analyst = who("analyst")
    assert access.masked_columns(analyst, "silver.users") == ["email", "phone"]  # loaded
    # A table registered after the snapshot was loaded is masked at once.
    lh.write("gold.contacts", [{"name": "ann", "mail": "a@x"}], column_tags={"mail": ["pii"]})
    assert access.masked_columns(analyst, "gold.contacts") == ["mail"]
    # A tag added later (by another process, in effect) is seen within two seconds.
    Lakehouse(lh.root).catalog.update_info("silver.orders", column_tags={"user_id": ["pii"]})
    waited = eventually(lambda: access.masked_columns(analyst, "silver.orders") == ["user_id"])
    assert waited <= PROPAGATION


def test_tokens_and_grants_in_postgresql(tmp_path: Path) -> None:
    with postgres_server() as url:
        lh = Lakehouse(tmp_path / "w", catalog_url=url)
        lh.write("silver.users", [{"id": 1, "email": "a@x"}], column_tags={"email": ["pii"]})
        access = Access(lh)
        token = access.create_token("alice", "analyst")
        with pytest.raises(LakehouseError, match="exists already"):
            access.create_token("alice", "viewer")
        access.grant("pii", "silver.users", "alice")
        other = Access(Lakehouse(tmp_path / "w", catalog_url=url))
        alice = other.authenticate(token)
        assert other.masked_columns(alice, "silver.users") == []
        assert other.masked_columns(who("analyst"), "silver.users") == ["email"]
        access.revoke_token("alice")
        access.create_token("alice", "viewer")
        eventually(lambda: _refused(other, token))


def _refused(access: Access, token: str) -> bool:
    try:
        access.authenticate(token)
    except AuthenticationError:
        return True
    return False


# -- the CLI -----------------------------------------------------------------------------------


def cli(warehouse: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env.update(
        {"LAKEHOUSE_WAREHOUSE": str(warehouse), "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    )
    return subprocess.run(
        [str(LAKEHOUSE), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=warehouse.parent,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return " ".join(result.stderr.split())


def test_cli_tokens_and_grants(lh: Lakehouse) -> None:
    warehouse = Path(lh.root)
    out = ok(cli(warehouse, "token", "create", "--name", "alice", "--role", "analyst"))
    token = next(w for w in out.split() if w.startswith("lh_"))
    assert "will not be shown again" in out
    assert Access(lh).authenticate(token) == Principal("alice", "analyst")

    listed = json.loads(ok(cli(warehouse, "token", "list", "--format", "json")))
    assert [(t["name"], t["role"], t["status"]) for t in listed] == [("alice", "analyst", "live")]
    assert token not in json.dumps(listed)
    assert "alice" in ok(cli(warehouse, "token", "list"))

    error = refused(cli(warehouse, "token", "create", "--name", "alice", "--role", "viewer"))
    assert "exists already" in error and "hint:" in error
    error = refused(cli(warehouse, "token", "create", "--name", "bob", "--role", "boss"))
    assert "unknown role 'boss'" in error and "viewer" in error

    assert "no grants" in ok(cli(warehouse, "grants"))
    ok(cli(warehouse, "grant", "read", "bronze", "--to", "analyst"))
    ok(cli(warehouse, "grant", "pii", "silver.users", "--to", "alice"))
    alice = Principal("alice", "analyst")
    access = Access(Lakehouse(lh.root))
    assert access.can_read(alice, "bronze.events")
    assert access.masked_columns(alice, "silver.users") == []
    grants = json.loads(ok(cli(warehouse, "grants", "--format", "json")))
    assert [(g["privilege"], g["on"], g["to"]) for g in grants] == [
        ("pii", "silver.users", "alice"),
        ("read", "bronze", "analyst"),
    ]
    table = ok(cli(warehouse, "grants"))
    assert "silver.users" in table and "bronze" in table
    error = refused(cli(warehouse, "grant", "write", "bronze", "--to", "analyst"))
    assert "unknown privilege 'write'" in error and "pii" in error

    ok(cli(warehouse, "revoke", "read", "bronze", "--to", "analyst"))
    assert eventually(lambda: not access.can_read(alice, "bronze.events")) <= PROPAGATION
    error = refused(cli(warehouse, "revoke", "read", "bronze", "--to", "analyst"))
    assert "no grant of read on bronze to analyst" in error

    out = ok(cli(warehouse, "token", "revoke", "alice"))
    assert "revoked token alice" in out and "pii on silver.users" in out
    with pytest.raises(AuthenticationError, match="revoked"):
        Access(Lakehouse(lh.root)).authenticate(token)
    listed = json.loads(ok(cli(warehouse, "token", "list", "--format", "json")))
    assert listed[0]["status"] == "revoked" and listed[0]["revoked_at"]
    assert "no token named 'bob'" in refused(cli(warehouse, "token", "revoke", "bob"))


def test_pii_follows_the_data_through_a_pipeline(tmp_path: Path) -> None:
    """Columns computed from a pii column inherit it through column lineage (select, rename,
    cast, value-picking aggregate, equality join key) unless the dataset opts out with
    ``-pii``; counts do not; a quarantine takes its table's tags; a tag added to a header
    later reaches the catalog at the next run."""
    from lakehouse.pipeline import load_pipeline, run_pipeline

    lh = Lakehouse(tmp_path / "warehouse")
    lh.write(
        "bronze.people",
        [
            {"id": 1, "email": "ann@example.com", "city": "Lyon"},
            {"id": 2, "email": "bob@example.com", "city": "Oslo"},
            {"id": 3, "email": None, "city": "Oslo"},
        ],
        column_tags={"email": ["pii"]},
    )
    lh.write("bronze.orders", [{"order_id": 7, "buyer": "ann@example.com", "amount": 5.0}])
    folder = tmp_path / "pipeline"
    (folder / "silver").mkdir(parents=True)
    (folder / "gold").mkdir()
    (folder / "pipeline.yml").write_text("name: people\n")
    (folder / "silver" / "people.sql").write_text(
        "-- column_tags: {domain_hint: [-pii]}\n"
        "-- expectations:\n"
        "--   - {name: has_email, not_null: email, action: quarantine}\n"
        "SELECT id, email AS contact, CAST(email AS VARCHAR) AS email, lower(email) AS "
        "domain_hint, length(email) AS email_length, city\nFROM bronze.people\n"
    )
    (folder / "silver" / "orders.sql").write_text(
        "SELECT o.order_id, o.buyer, o.amount\n"
        "FROM bronze.orders o JOIN bronze.people p ON o.buyer = p.email\n"
    )
    (folder / "gold" / "cities.sql").write_text(
        "SELECT city, count(DISTINCT email) AS people, min(email) AS first_email\n"
        "FROM silver.people GROUP BY city\n"
    )
    (folder / "gold" / "people_view.sql").write_text(
        "-- kind: view\n-- column_tags: {email: [pii], city: [pii]}\n"
        "SELECT id, email, city FROM silver.people\n"
    )
    run_pipeline(lh, load_pipeline(folder))
    access = Access(lh)
    analyst = who("analyst")

    def masked(table: str) -> set[str]:
        return set(access.masked_columns(analyst, table))

    assert masked("silver.people") == {"contact", "email"}  # domain_hint opted out
    assert masked("silver.people_quarantine") == {"contact", "email"}
    assert masked("silver.orders") == {"buyer"}  # joined on a pii column
    assert masked("gold.cities") == {"first_email"}  # count(DISTINCT email) is not pii
    shown = lh.engine.safe_query(
        "SELECT contact, email, domain_hint FROM silver.people ORDER BY id",
        masked=lambda t: access.masked_columns(analyst, t),
    ).table.to_pylist()
    assert shown[0]["contact"] == shown[0]["email"] != "ann@example.com"
    assert shown[0]["domain_hint"] == "ann@example.com"
    # A view reads its tables masked: of its own columns only those tagged pii that
    # inherit nothing are masked on top (masking email again would break joins).
    assert masked("gold.people_view") == {"city"}
    joined = lh.engine.safe_query(
        "SELECT v.id, v.city FROM gold.people_view v JOIN silver.people p USING (email) "
        "ORDER BY v.id",
        masked=lambda t: access.masked_columns(analyst, t),
    ).table.to_pylist()
    assert [r["id"] for r in joined] == [1, 2] and joined[0]["city"] != "Lyon"
    # A warehouse whose edges an older column lineage recorded (min() as an aggregation,
    # no join keys) has them analysed again at its next run, once.
    job, catalog = "pipeline people / gold.cities", lh.catalog
    fingerprint = catalog.lineage_fingerprints("pipeline people / ")[(job, "gold.cities")]
    old = [
        {**e, "transform": "aggregation" if e["transform"] == "carried" else e["transform"]}
        for e in catalog.lineage_edges("gold.cities")
        if e["run_id"] is None
    ]
    catalog.record_lineage(job, "gold.cities", old, operation="materialized_view",
                           fingerprint=fingerprint)
    catalog.record_lineage("pipeline people / (column lineage)", "-", [], fingerprint="1")
    assert set(Access(lh).masked_columns(analyst, "gold.cities")) == set()
    run_pipeline(lh, load_pipeline(folder))
    assert set(Access(lh).masked_columns(analyst, "gold.cities")) == {"first_email"}
    # A column tagged in the header later is tagged at the next run.
    (folder / "gold" / "cities.sql").write_text(
        "-- column_tags: {city: [pii]}\n" + (folder / "gold" / "cities.sql").read_text()
    )
    run_pipeline(lh, load_pipeline(folder))
    access = Access(lh)
    assert lh.catalog.get("gold.cities").column_tags == {"city": ["pii"]}
    assert set(access.masked_columns(analyst, "gold.cities")) == {"city", "first_email"}


def test_inherited_pii_is_masked_from_a_tables_first_version(tmp_path: Path) -> None:
    """A dataset's column lineage is recorded before its rows are written: while the run
    that first builds a table is still going, a column computed from a pii column is
    already masked."""
    from lakehouse.pipeline import load_pipeline, run_pipeline

    lh = Lakehouse(tmp_path / "warehouse")
    lh.write("bronze.people", [{"id": 1, "email": "ann@example.com"}],
             column_tags={"email": ["pii"]})
    folder = tmp_path / "pipeline"
    (folder / "silver").mkdir(parents=True)
    (folder / "silver" / "people.sql").write_text("SELECT id, email AS contact FROM bronze.people")
    (folder / "silver" / "later.sql").write_text("SELECT id FROM silver.people")
    analyst = who("analyst")
    seen: dict[str, list[str]] = {}

    def progress(event: str, name: str, details: dict) -> None:
        if event == "done" and name == "silver.people":  # the run has a dataset to go
            access = Access(Lakehouse(lh.root))
            seen["masked"] = access.masked_columns(analyst, "silver.people")
            seen["rows"] = lh.engine.safe_query(
                "SELECT contact FROM silver.people",
                masked=lambda t: access.masked_columns(analyst, t),
            ).table.column("contact").to_pylist()

    run_pipeline(lh, load_pipeline(folder), on_progress=progress)
    assert seen["masked"] == ["contact"]
    assert seen["rows"] != ["ann@example.com"] and seen["rows"][0].startswith("pii:")
