"""The catalog's own tables (SQLAlchemy Core, so SQLite and PostgreSQL both work)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

tables = Table(
    "tables",
    metadata,
    Column("name", String(200), primary_key=True),  # layer.name
    Column("layer", String(32), nullable=False, index=True),
    Column("location", Text, nullable=False),
    Column("format", String(16), nullable=False),
    Column("schema_json", Text, nullable=False),
    Column("options_json", Text, nullable=False),  # partitioning, compression, keys, ...
    Column("owner", String(200)),
    Column("description", Text),
    Column("tags_json", Text, nullable=False, default="[]"),
    Column("column_tags_json", Text, nullable=False, default="{}"),
    Column("retention_days", Integer),
    Column("version", BigInteger, nullable=False, default=0),
    Column("row_count", BigInteger, nullable=False, default=0),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("num_files", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

schema_history = Table(
    "schema_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, index=True),
    Column("version", BigInteger, nullable=False),
    Column("schema_json", Text, nullable=False),
    Column("change", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# Which table (and column) feeds which: edges recorded from pipeline definitions (run_id
# NULL) and edges observed during a run (run_id set; only the latest run per job and target
# is kept). A NULL column is an edge between whole tables.
lineage = Table(
    "lineage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source_table", String(200), nullable=False, index=True),
    Column("source_column", String(300)),
    Column("target_table", String(200), nullable=False, index=True),
    Column("target_column", String(300)),
    Column("job", String(400), nullable=False, index=True),
    Column("operation", String(64), nullable=False),
    Column("transform", String(32)),
    Column("run_id", String(64)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# The fingerprint of the definition each job's definition edges into a table were computed
# from (its SQL and the columns of what it reads), so unchanged definitions are not
# analysed again on every run.
lineage_definitions = Table(
    "lineage_definitions",
    metadata,
    Column("job", String(400), primary_key=True),
    Column("target_table", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# API tokens: only the SHA-256 hash of each secret is kept. A name is unique among the live
# (not revoked) tokens; revoked ones stay listed with the time they were revoked.
tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("role", String(32), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
)
Index(
    "ix_tokens_live_name",
    tokens.c.name,
    unique=True,
    sqlite_where=tokens.c.revoked_at.is_(None),
    postgresql_where=tokens.c.revoked_at.is_(None),
)

# Rights added to a role or one token on top of the role's defaults: "read" or "pii" on a
# layer ("bronze") or a table ("silver.users").
grants = Table(
    "grants",
    metadata,
    Column("privilege", String(16), primary_key=True),
    Column("target", String(200), primary_key=True),
    Column("grantee", String(200), primary_key=True),
    Column("granted_at", DateTime(timezone=True), nullable=False),
)

# Secrets of the warehouse that no API answer and no SQL statement reads: the key of the PII
# pseudonyms (one per warehouse, made on first use, never changed, so pseudonyms stay stable).
secrets = Table(
    "secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Who runs the schedules: one row per lease (the scheduler's is "scheduler"), held by one
# process until ``expires_at``; taken or renewed by one conditional UPDATE (or the INSERT
# of the first holder), so among several schedulers exactly one acts.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# Each scheduled job's state: the last due time handled (catch-up after downtime starts
# from it), the due times waiting to run, the run in progress or last ended and its
# outcome, the retry planned, the next due time. A change is written only over the
# revision it was made from, so two processes never both act on one due time.
schedule_state = Table(
    "schedule_state",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("kind", String(32), nullable=False),  # pipeline | command
    Column("last_due", DateTime(timezone=True)),
    Column("next_due", DateTime(timezone=True)),
    Column("pending_json", Text, nullable=False, default="[]"),  # due times queued
    Column("run_id", String(64)),
    Column("run_due", DateTime(timezone=True)),
    Column("run_trigger", String(16)),
    Column("run_started_at", DateTime(timezone=True)),
    Column("running", Integer, nullable=False, default=0),
    Column("attempt", Integer, nullable=False, default=0),  # retries made for run_due
    Column("retry_at", DateTime(timezone=True)),
    Column("outcome", String(32)),
    Column("error", Text),
    Column("ended_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("revision", Integer, nullable=False, default=0),  # each change adds one
)

# What the scheduler did at each due time of each job: started (with the run), skipped
# (overlap), missed (catch-up policy), retried, and how each run ended.
schedule_log = Table(
    "schedule_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(200), nullable=False, index=True),
    Column("due_at", DateTime(timezone=True)),
    Column("event", String(32), nullable=False),
    Column("run_id", String(64)),
    Column("trigger", String(16)),
    Column("reason", Text),
    Column("holder", String(200)),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Queries saved by name from the SQL editor: their text, ``:name`` parameters with default
# values, and the tables the text names (a caller sees a saved query only if it may read
# every one of them).
saved_queries = Table(
    "saved_queries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("sql", Text, nullable=False),
    Column("params_json", Text, nullable=False, default="{}"),
    Column("chart_json", Text),  # the chart drawn with it, as the editor describes it
    Column("tables_json", Text, nullable=False, default="[]"),
    Column("owner", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The statements each caller ran through the API, newest kept (``query_history`` trims).
query_history = Table(
    "query_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("principal", String(200), nullable=False, index=True),
    Column("sql", Text, nullable=False),
    Column("params_json", Text, nullable=False, default="{}"),
    Column("row_count", BigInteger),
    Column("elapsed_ms", BigInteger),
    Column("error", Text),
    Column("at", DateTime(timezone=True), nullable=False),
)
