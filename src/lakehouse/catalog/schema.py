"""The catalog's own tables (SQLAlchemy Core, so SQLite and PostgreSQL both work)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
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
