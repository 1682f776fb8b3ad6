"""Catalog store: registration on first write, statistics after every commit, search."""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import and_, create_engine, delete, event, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

import lakehouse.catalog.schema as cs
from lakehouse.errors import CatalogError

T = TypeVar("T")


@dataclass
class TableInfo:
    """What the catalog knows of one table."""

    name: str
    layer: str
    location: str
    format: str
    columns: list[dict[str, Any]]
    options: dict[str, Any]
    owner: str | None
    description: str | None
    tags: list[str]
    column_tags: dict[str, list[str]]
    retention_days: int | None
    version: int
    row_count: int
    size_bytes: int
    num_files: int
    created_at: datetime
    updated_at: datetime
    schema_history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def partition_by(self) -> list[str]:
        return list(self.options.get("partition_by") or [])

    @property
    def keys(self) -> list[str]:
        return list(self.options.get("keys") or [])

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["partition_by"] = self.partition_by
        out["keys"] = self.keys
        for k in ("created_at", "updated_at"):
            out[k] = out[k].isoformat()
        return out


def _now() -> datetime:
    return datetime.now(UTC)


class Catalog:
    """The metadata store. SQLite file in the warehouse by default, PostgreSQL by URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": 60})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._retry(lambda: cs.metadata.create_all(self.engine))

    def _retry(self, fn: Callable[[], T], attempts: int = 20) -> T:
        """Run ``fn``; SQLite under several writer processes can report a busy database,
        and processes opening a new warehouse together race to create the catalog."""
        for attempt in range(attempts):
            try:
                return fn()
            except (OperationalError, ProgrammingError) as exc:
                transient = ("locked", "busy", "already exists", "duplicate")
                if not any(word in str(exc) for word in transient):
                    raise CatalogError(f"catalog {self.url} failed: {exc.orig}") from exc
                if attempt == attempts - 1:
                    raise CatalogError(f"catalog {self.url} stayed busy: {exc.orig}") from exc
                time.sleep(0.05 * (attempt + 1))
        raise CatalogError(f"catalog {self.url}: no attempt made")

    # -- registration and statistics -------------------------------------------------------
    def register(
        self,
        *,
        name: str,
        layer: str,
        location: str,
        fmt: str,
        columns: list[dict[str, Any]],
        options: dict[str, Any],
        owner: str | None,
        description: str | None,
        tags: list[str],
        column_tags: dict[str, list[str]],
        retention_days: int | None,
        version: int,
    ) -> None:
        """Register a table at its first write; a table registered already is left as it is."""
        now = _now()
        row = dict(
            name=name,
            layer=layer,
            location=location,
            format=fmt,
            schema_json=json.dumps(columns),
            options_json=json.dumps(options),
            owner=owner,
            description=description,
            tags_json=json.dumps(sorted(tags)),
            column_tags_json=json.dumps(column_tags),
            retention_days=retention_days,
            version=version,
            created_at=now,
            updated_at=now,
        )

        def go() -> None:
            with self.engine.begin() as conn:
                exists = conn.execute(
                    select(cs.tables.c.name).where(cs.tables.c.name == name)
                ).first()
                if exists:
                    return
                try:
                    conn.execute(insert(cs.tables).values(**row))
                    conn.execute(
                        insert(cs.schema_history).values(
                            name=name,
                            version=version,
                            schema_json=row["schema_json"],
                            change="created",
                            recorded_at=now,
                        )
                    )
                except IntegrityError:
                    pass  # registered by a concurrent writer in the meantime

        self._retry(go)

    def record_commit(
        self,
        name: str,
        *,
        version: int,
        row_count: int,
        size_bytes: int,
        num_files: int,
        columns: list[dict[str, Any]] | None = None,
        change: str | None = None,
    ) -> None:
        """After a commit: new statistics, and the schema when it changed."""
        now = _now()

        def go() -> None:
            with self.engine.begin() as conn:
                current = conn.execute(
                    select(cs.tables.c.version, cs.tables.c.schema_json).where(
                        cs.tables.c.name == name
                    )
                ).first()
                if current is None:
                    return
                values: dict[str, Any] = dict(updated_at=now)
                # Concurrent writers may report out of order: keep the newest version's figures.
                if version >= current.version:
                    values.update(
                        version=version,
                        row_count=row_count,
                        size_bytes=size_bytes,
                        num_files=num_files,
                    )
                if columns is not None:
                    schema_json = json.dumps(columns)
                    if schema_json != current.schema_json and version >= current.version:
                        values["schema_json"] = schema_json
                        conn.execute(
                            insert(cs.schema_history).values(
                                name=name,
                                version=version,
                                schema_json=schema_json,
                                change=change or "schema changed",
                                recorded_at=now,
                            )
                        )
                conn.execute(update(cs.tables).where(cs.tables.c.name == name).values(**values))

        self._retry(go)

    def reformatted(
        self,
        name: str,
        *,
        fmt: str,
        options: dict[str, Any],
        version: int,
        row_count: int,
        size_bytes: int,
        num_files: int,
        columns: list[dict[str, Any]],
    ) -> None:
        """After a table was converted to the format ``fmt``: its format, options and new
        figures (its versions start again), the rest of its entry kept."""
        now = _now()
        values = dict(
            format=fmt,
            options_json=json.dumps(options),
            version=version,
            row_count=row_count,
            size_bytes=size_bytes,
            num_files=num_files,
            schema_json=json.dumps(columns),
            updated_at=now,
        )

        def go() -> None:
            with self.engine.begin() as conn:
                conn.execute(update(cs.tables).where(cs.tables.c.name == name).values(**values))
                conn.execute(
                    insert(cs.schema_history).values(
                        name=name,
                        version=version,
                        schema_json=values["schema_json"],
                        change=f"converted to {fmt}",
                        recorded_at=now,
                    )
                )

        self._retry(go)

    def update_info(self, name: str, **fields: Any) -> None:
        """Change descriptive fields: owner, description, tags, column_tags, retention_days."""
        values: dict[str, Any] = {}
        for key, value in fields.items():
            if key in ("tags",):
                values["tags_json"] = json.dumps(sorted(value))
            elif key == "column_tags":
                values["column_tags_json"] = json.dumps(value)
            elif key in ("owner", "description", "retention_days"):
                values[key] = value
            else:
                raise CatalogError(f"unknown catalog field {key!r}")
        values["updated_at"] = _now()

        def go() -> None:
            with self.engine.begin() as conn:
                conn.execute(update(cs.tables).where(cs.tables.c.name == name).values(**values))

        self._retry(go)

    def drop(self, name: str) -> None:
        def go() -> None:
            with self.engine.begin() as conn:
                conn.execute(cs.tables.delete().where(cs.tables.c.name == name))
                conn.execute(cs.schema_history.delete().where(cs.schema_history.c.name == name))

        self._retry(go)

    # -- reading ---------------------------------------------------------------------------
    def get(self, name: str, with_history: bool = False) -> TableInfo | None:
        def go() -> TableInfo | None:
            with self.engine.connect() as conn:
                row = conn.execute(select(cs.tables).where(cs.tables.c.name == name)).first()
                if row is None:
                    return None
                info = _info(row)
                if with_history:
                    rows = conn.execute(
                        select(cs.schema_history)
                        .where(cs.schema_history.c.name == name)
                        .order_by(cs.schema_history.c.version, cs.schema_history.c.id)
                    )
                    info.schema_history = [
                        dict(
                            version=r.version,
                            change=r.change,
                            columns=json.loads(r.schema_json),
                            recorded_at=_aware(r.recorded_at).isoformat(),
                        )
                        for r in rows
                    ]
                return info

        return self._retry(go)

    def names(self) -> list[str]:
        def go() -> list[str]:
            with self.engine.connect() as conn:
                return [r.name for r in conn.execute(select(cs.tables.c.name))]

        return sorted(self._retry(go))

    def list(
        self,
        layer: str | None = None,
        tag: str | None = None,
        search: str | None = None,
        column: str | None = None,
    ) -> list[TableInfo]:
        """Tables, filtered by layer, tag, a text in the name/description, or a column name."""

        def go() -> list[TableInfo]:
            query = select(cs.tables).order_by(cs.tables.c.name)
            if layer:
                query = query.where(cs.tables.c.layer == layer)
            with self.engine.connect() as conn:
                return [_info(r) for r in conn.execute(query)]

        infos = self._retry(go)
        if tag:
            infos = [
                i
                for i in infos
                if tag in i.tags or any(tag in tags for tags in i.column_tags.values())
            ]
        if search:
            needle = search.lower()
            infos = [
                i
                for i in infos
                if needle in i.name
                or needle in (i.description or "").lower()
                or any(needle in c["name"].lower() for c in i.columns)
                or any(needle in t.lower() for t in i.tags)
            ]
        if column:
            infos = [i for i in infos if any(c["name"] == column for c in i.columns)]
        return infos

    # -- lineage ---------------------------------------------------------------------------
    def record_lineage(
        self,
        job: str,
        target: str,
        edges: builtins.list[dict[str, Any]],
        run_id: str | None = None,
        *,
        operation: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        """Record what ``target`` is computed from by ``job``.

        Without ``run_id`` the edges are the job's definition and replace the definition
        edges recorded before for ``job`` and ``target``. With ``run_id`` they are what a
        run observed and replace the edges of the previous run of ``job`` into ``target``.
        Each edge is a dict with ``source_table`` and optionally ``source_column``,
        ``target_column``, ``transform`` and ``operation`` (default: ``operation``, else
        ``"unknown"``). ``fingerprint`` (definition edges only) identifies the definition
        they were computed from: see :meth:`lineage_fingerprints`.
        """
        now = _now()
        rows: builtins.list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        for edge in edges:
            source = edge.get("source_table")
            if not source or not isinstance(source, str):
                raise CatalogError(f"lineage edge of {job!r} without a source table: {edge!r}")
            row = dict(
                source_table=source,
                source_column=edge.get("source_column"),
                target_table=target,
                target_column=edge.get("target_column"),
                job=job,
                operation=edge.get("operation") or operation or "unknown",
                transform=edge.get("transform"),
                run_id=run_id,
                recorded_at=now,
            )
            key = tuple(row[k] for k in ("source_table", "source_column", "target_column"))
            key += (row["operation"], row["transform"])
            if key not in seen:
                seen.add(key)
                rows.append(row)
        lin = cs.lineage
        same = and_(lin.c.job == job, lin.c.target_table == target)
        kept = lin.c.run_id.is_(None) if run_id is None else lin.c.run_id.is_not(None)

        defs = cs.lineage_definitions
        same_def = and_(defs.c.job == job, defs.c.target_table == target)

        def go() -> None:
            with self.engine.begin() as conn:
                conn.execute(delete(lin).where(same, kept))
                if rows:
                    conn.execute(insert(lin), rows)
                if run_id is None:
                    conn.execute(delete(defs).where(same_def))
                    if fingerprint is not None:
                        conn.execute(
                            insert(defs),
                            [
                                dict(
                                    job=job,
                                    target_table=target,
                                    fingerprint=fingerprint,
                                    recorded_at=now,
                                )
                            ],
                        )

        self._retry(go)

    def lineage_fingerprints(self, job_prefix: str = "") -> dict[tuple[str, str], str]:
        """The fingerprints of the recorded definition edges, by (job, target table)."""
        defs = cs.lineage_definitions

        def go() -> dict[tuple[str, str], str]:
            with self.engine.connect() as conn:
                query = select(defs).where(defs.c.job.startswith(job_prefix, autoescape=True))
                return {(r.job, r.target_table): r.fingerprint for r in conn.execute(query)}

        return self._retry(go)

    def lineage_edges(self, table: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every recorded lineage edge, or those with ``table`` as source or target."""
        lin = cs.lineage
        query = select(lin).order_by(lin.c.id)
        if table is not None:
            query = query.where(or_(lin.c.source_table == table, lin.c.target_table == table))

        def go() -> builtins.list[dict[str, Any]]:
            with self.engine.connect() as conn:
                return [
                    dict(
                        id=r.id,
                        source_table=r.source_table,
                        source_column=r.source_column,
                        target_table=r.target_table,
                        target_column=r.target_column,
                        job=r.job,
                        operation=r.operation,
                        transform=r.transform,
                        run_id=r.run_id,
                        recorded_at=_aware(r.recorded_at).isoformat(),
                    )
                    for r in conn.execute(query)
                ]

        return self._retry(go)

    def forget_lineage(self, job: str, target: str | None = None) -> None:
        """Remove the lineage of ``job`` (into ``target`` only, when given): a pipeline
        dataset that no longer exists."""
        lin = cs.lineage
        condition = lin.c.job == job
        if target is not None:
            condition = and_(condition, lin.c.target_table == target)

        defs = cs.lineage_definitions
        same_def = defs.c.job == job
        if target is not None:
            same_def = and_(same_def, defs.c.target_table == target)

        def go() -> None:
            with self.engine.begin() as conn:
                conn.execute(delete(lin).where(condition))
                conn.execute(delete(defs).where(same_def))

        self._retry(go)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _info(row: Any) -> TableInfo:
    return TableInfo(
        name=row.name,
        layer=row.layer,
        location=row.location,
        format=row.format,
        columns=json.loads(row.schema_json),
        options=json.loads(row.options_json),
        owner=row.owner,
        description=row.description,
        tags=json.loads(row.tags_json or "[]"),
        column_tags=json.loads(row.column_tags_json or "{}"),
        retention_days=row.retention_days,
        version=row.version,
        row_count=row.row_count,
        size_bytes=row.size_bytes,
        num_files=row.num_files,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    # WAL with NORMAL sync cannot corrupt the file; a power cut may lose the last
    # updates, which the next write or info() refreshes from the Delta log.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
