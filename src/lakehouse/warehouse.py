"""``Lakehouse``: the one object a user opens. It builds the warehouse's ``Storage``
(root, catalog, table locations) and SQL engine and hands them to the tables;
everything else (CLI, API, pipelines) goes through it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from lakehouse.catalog.store import Catalog, TableInfo
from lakehouse.config import LAYER_DEFAULTS, TableOptions, default_warehouse, layer_defaults
from lakehouse.errors import LakehouseError, TableNotFoundError
from lakehouse.names import LAYERS, TableName, parse_table_name
from lakehouse.sql.engine import SQLEngine
from lakehouse.sql.result import Result
from lakehouse.storage import Storage
from lakehouse.tables.formats import format_of, holds_table
from lakehouse.tables.registration import register_found
from lakehouse.tables.schema import schema_columns
from lakehouse.tables.table import Table
from lakehouse.tables.writer import Txn, WriteMode, WriteResult, write_table

if TYPE_CHECKING:
    from lakehouse.serving.mirrors import Serving
    from lakehouse.settings.model import Settings


class Lakehouse:
    """Open (or create) a warehouse.

    ``root`` is a folder (default ``./lakehouse_data`` or ``LAKEHOUSE_WAREHOUSE``) or an
    object-store URI such as ``s3://bucket/prefix``. The catalog is a SQLite file in the
    warehouse folder unless ``catalog_url`` (or ``LAKEHOUSE_CATALOG_URL``) names another
    database, e.g. ``postgresql+psycopg://user@host/db``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        catalog_url: str | None = None,
        storage_options: dict[str, str] | None = None,
        settings: Settings | None = None,
    ) -> None:
        """``settings``: the platform's settings (``Lakehouse.from_settings`` reads
        ``lakehouse.yaml``); the layers' table defaults and the serving store come from
        them, and the operations (schedules, maintenance, health, alerts) read them."""
        from lakehouse.settings.model import Settings

        self.settings = settings or Settings()
        root = str(root) if root is not None else default_warehouse()
        layers = {k: v.model_dump() for k, v in self.settings.layers.items()}
        for layer in LAYER_DEFAULTS:  # new tables take the warehouse's table format
            layers[layer] = {**layers.get(layer, {}), "format": self.settings.format}
        self.storage = Storage(
            root,
            catalog_url=catalog_url,
            storage_options=storage_options,
            layer_defaults=layer_defaults(layers),
        )
        self.engine = SQLEngine(self.storage)
        self._serving: Serving | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, warehouse: str | None = None
    ) -> Lakehouse:
        """The warehouse the settings name (``load_settings()`` when none are given:
        ``lakehouse.yaml``, its profile and the ``LAKEHOUSE_*`` variables);
        ``warehouse`` overrides theirs."""
        if settings is None:
            from lakehouse.settings import load_settings

            settings = load_settings().settings
        url = settings.catalog_url
        return cls(
            warehouse or settings.warehouse,
            catalog_url=url.get_secret_value() if url is not None else None,
            storage_options={k: v.get_secret_value() for k, v in settings.storage_options.items()}
            or None,
            settings=settings,
        )

    def __repr__(self) -> str:
        return f"<Lakehouse {self.root}>"

    @property
    def serving(self) -> Serving:
        """The serving store: ClickHouse mirrors of the gold and real-time tables
        (``lh.serving.sql("SELECT ... FROM gold.daily_summary")`` in ClickHouse's
        dialect, ``status()``, ``refresh()``)."""
        if self._serving is None:
            from lakehouse.serving.mirrors import Serving

            url = self.settings.serving.url
            self._serving = Serving(
                self.storage, self.engine, url.get_secret_value() if url is not None else None
            )
        return self._serving

    # -- the storage ---------------------------------------------------------------------
    @property
    def root(self) -> str:
        return self.storage.root

    @property
    def local(self) -> bool:
        return self.storage.local

    @property
    def storage_options(self) -> dict[str, str] | None:
        return self.storage.storage_options

    @property
    def catalog(self) -> Catalog:
        return self.storage.catalog

    def table_uri(self, name: TableName) -> str:
        return self.storage.table_uri(name)

    def exists(self, name: str) -> bool:
        """Whether the table is in the catalog, or a Delta table in the warehouse. Only
        asks: a table found unregistered stays so (see ``register_found``)."""
        if self.catalog.get(name) is not None:
            return True
        try:
            parsed = parse_table_name(name)
        except LakehouseError:
            return False
        return holds_table(self.storage, parsed)

    def register_found(self, name: str) -> bool:
        """Register a Delta table found in the warehouse but unknown to the catalog
        (written by another engine, by a writer killed before registering it, or before
        the catalog was reset); whether there is such a table. The one repair step: a
        write, and a query naming a table the catalog lacks, take it."""
        return register_found(self.storage, name)

    # -- the API ----------------------------------------------------------------------------
    def write(
        self,
        table: str,
        data: Any,
        mode: WriteMode = "append",
        *,
        keys: list[str] | None = None,
        predicate: str | None = None,
        evolve: bool = False,
        partition_by: list[str] | None = None,
        date_column: str | None = None,
        options: TableOptions | None = None,
        source_system: str | None = None,
        source: str | None = None,
        txn: Txn | None = None,
        input_versions: dict[str, int] | None = None,
        merge_delete: str | None = None,
        merge_combine: dict[str, str] | None = None,
        **table_options: Any,
    ) -> WriteResult:
        """Write data to a table, creating and registering it on first write.

        mode: ``append``; ``overwrite`` (the whole table, or the rows matching ``predicate``);
        ``merge`` (upsert on ``keys``). ``evolve=True`` adds new columns and widens types.
        ``txn=(app_id, n)`` commits a Delta transaction identifier with the write and skips
        the write if ``n`` was committed for ``app_id`` already (exactly-once sources); a
        list of such pairs commits them all, and skips the write if every one is in.
        """
        name = parse_table_name(table)
        opts = options or TableOptions()
        extra: dict[str, Any] = dict(table_options)
        if partition_by is not None:
            extra["partition_by"] = tuple(partition_by)
        if date_column is not None:
            extra["date_column"] = date_column
            if "partition_by" not in extra:
                layer_gran = self.storage.layer_defaults[name.layer].granularity or "day"
                gran = extra.get("granularity") or opts.granularity or layer_gran
                extra["granularity"] = gran
                extra["partition_by"] = (f"{date_column}_{gran}",)
        for key in ("keys", "tags"):
            if key in extra:
                extra[key] = tuple(extra[key])
        if keys and "keys" not in extra:
            extra["keys"] = tuple(keys)
        if extra:
            try:
                opts = TableOptions(**{**opts.__dict__, **extra})
            except TypeError as exc:
                raise LakehouseError(f"unknown table option: {exc}") from exc
        return write_table(
            self.storage,
            name,
            data,
            mode=mode,
            keys=keys,
            predicate=predicate,
            evolve=evolve,
            options=opts,
            source_system=source_system,
            source=source,
            txn=txn,
            input_versions=input_versions,
            merge_delete=merge_delete,
            merge_combine=merge_combine,
        )

    def table(self, name: str) -> Table:
        parsed = parse_table_name(name)
        if self.catalog.get(str(parsed)) is None and not holds_table(self.storage, parsed):
            raise TableNotFoundError(str(parsed), self.engine.suggest(str(parsed)))
        return Table(self.storage, self.engine, parsed)

    def tables(
        self,
        layer: str | None = None,
        *,
        tag: str | None = None,
        search: str | None = None,
        column: str | None = None,
    ) -> list[TableInfo]:
        """What the catalog knows, filtered by layer, tag, text or column name."""
        if layer is not None and layer not in LAYERS:
            raise LakehouseError(f"unknown layer {layer!r}", f"the layers are {', '.join(LAYERS)}")
        return self.catalog.list(layer=layer, tag=tag, search=search, column=column)

    def sql(self, query: str, engine: str = "duckdb", master: str | None = None) -> Result:
        """Run SQL over the warehouse: ``layer.table`` names, joins across layers, time travel
        with ``VERSION AS OF n`` / ``TIMESTAMP AS OF '...'``, EXPLAIN. ``engine="spark"``
        runs it on Spark (on ``master``, else the settings' one) over the tables' newest
        versions, translated from the same dialect; ``"auto"`` picks by the size of the
        tables it reads (the ``engine`` settings). ``Result.engine`` says which ran it."""
        if engine not in ("duckdb", "spark", "auto"):
            raise LakehouseError(f"unknown engine {engine!r}", "use duckdb, spark or auto")
        why = None
        if engine == "auto":
            from lakehouse.spark.routing import choose_query

            choice = choose_query(self.engine, query, self.settings.engine)
            engine, why = choice.engine, choice.why
        if engine == "duckdb":
            result = self.engine.query(query)
        else:
            import time

            from lakehouse.spark.engine import SparkEngine

            started = time.perf_counter()
            rows = SparkEngine(self.engine, self.settings.spark, master).query(query)
            result = Result(rows, query, time.perf_counter() - started)
            result.engine = "spark"
        result.engine_why = why
        return result

    def create_view(
        self, name: str, sql: str, *, description: str | None = None, owner: str | None = None
    ) -> None:
        """Define (or redefine) a view: a named query over other tables, stored in the
        catalog only and computed when read."""
        parsed = parse_table_name(name)
        info = self.catalog.get(str(parsed))
        if info is not None and info.format != "view":
            raise LakehouseError(
                f"{parsed} is a table, not a view", "drop it first or choose another name"
            )
        body = sql.strip().rstrip(";")
        schema = self.engine.query(f"SELECT * FROM ({body}) AS v LIMIT 0").schema
        if info is not None:
            if info.options.get("sql") == body:
                return
            self.catalog.drop(str(parsed))
        self.catalog.register(
            name=str(parsed),
            layer=parsed.layer,
            location="",
            fmt="view",
            columns=schema_columns(schema),
            options={"sql": body},
            owner=owner,
            description=description,
            tags=[],
            column_tags={},
            retention_days=None,
            version=0,
        )
        self.engine.forget(str(parsed))

    def drop(self, name: str) -> None:
        """Forget a table in the catalog and delete its files."""
        parsed = parse_table_name(name)
        info = self.catalog.get(str(parsed))
        if info is not None and info.format == "view":
            self.catalog.drop(str(parsed))
            self.engine.forget(str(parsed))
            return
        self.table(str(parsed))
        format_of(self.storage, parsed).forget(self.storage, parsed)
        self.catalog.drop(str(parsed))
        self.engine.forget(str(parsed))
        if self.local:
            import shutil

            shutil.rmtree(self.table_uri(parsed), ignore_errors=True)
