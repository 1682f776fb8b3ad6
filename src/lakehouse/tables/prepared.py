"""The incoming data of a write, fitted to the table: the bronze metadata columns and the
derived date partition column added, batch by batch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from lakehouse.config import TableOptions
from lakehouse.errors import SchemaMismatchError
from lakehouse.names import TableName
from lakehouse.quoting import ident, text_or_null
from lakehouse.scratch import scratch
from lakehouse.tables.convert import cast_batch, normalize_schema

METADATA_COLUMNS = ("_ingested_at", "_ingest_date", "_source_system", "_source", "_record_hash")


class Prepared:
    """The incoming data with its target schema worked out; batches are produced on demand
    so a RecordBatchReader is streamed, never materialised."""

    def __init__(
        self,
        name: TableName,
        arrow: pa.Table | pa.RecordBatchReader,
        opts: TableOptions,
        source_system: str | None,
        source: str | None,
    ) -> None:
        self.name = name
        self.arrow = arrow
        self.opts = opts
        self.given = normalize_schema(arrow.schema)
        self.ingested_at = datetime.now(UTC)
        self.source_system = source_system
        self.source = source
        self.rows = 0
        self.delete_flag: Any = None  # merges: rows that delete their key
        self.combine: dict[str, str] = {}  # merges: columns combined with the matched value
        fields = list(self.given)
        names = set(self.given.names)
        if opts.metadata_columns:
            meta = [
                pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
                pa.field("_ingest_date", pa.date32()),
                pa.field("_source_system", pa.string()),
                pa.field("_source", pa.string()),
                pa.field("_record_hash", pa.string()),
            ]
            fields += [f for f in meta if f.name not in names]
        derived = self.derived_column
        if derived and derived not in names:
            fields.append(pa.field(derived, pa.date32()))
        self.schema = pa.schema(fields)

    @property
    def derived_column(self) -> str | None:
        o = self.opts
        if o.date_column and o.granularity and o.partition_by and len(o.partition_by) == 1:
            column = o.partition_by[0]
            if column == f"{o.date_column}_{o.granularity}":
                return column
        return None

    def batches(self, target: pa.Schema) -> Iterator[pa.RecordBatch]:
        source = self.arrow.to_batches() if isinstance(self.arrow, pa.Table) else self.arrow
        self.rows = 0  # a retried write reads the data again
        user_columns = [n for n in self.given.names if n not in METADATA_COLUMNS]
        for batch in source:
            batch = cast_batch(batch, self.given)
            if self.opts.metadata_columns:
                batch = self._with_metadata(batch, user_columns)
            if self.derived_column and self.derived_column not in self.given.names:
                batch = self._with_derived(batch)
            self.rows += batch.num_rows
            yield cast_batch(batch, target)

    def _with_metadata(self, batch: pa.RecordBatch, user_columns: list[str]) -> pa.RecordBatch:
        """The bronze metadata columns the batch lacks, in one DuckDB pass (the row hash is
        md5 of the row's own values as JSON, so any engine can recompute it)."""
        have = set(batch.schema.names)
        stamp = self.ingested_at.isoformat()
        wanted = {
            "_ingested_at": f"CAST({_sql_text(stamp)} AS TIMESTAMPTZ)",
            "_ingest_date": "CAST(_ingested_at AS DATE)"
            if "_ingested_at" in have
            else f"CAST(CAST({_sql_text(stamp)} AS TIMESTAMPTZ) AS DATE)",
            "_source_system": _sql_text(self.source_system),
            "_source": _sql_text(self.source),
            "_record_hash": "md5(to_json(struct_pack("
            + ", ".join(f"{_dq(c)} := {_dq(c)}" for c in user_columns)
            + ")))"
            if user_columns
            else "md5('{}')",
        }
        extra = [f"{expr} AS {name}" for name, expr in wanted.items() if name not in have]
        if not extra:
            return batch
        con = scratch()
        try:
            rows = pa.Table.from_batches([batch])  # noqa: F841 - read by DuckDB
            out = con.sql(f"SELECT *, {', '.join(extra)} FROM rows").to_arrow_table()
        finally:
            con.close()
        return _first_batch(out)

    def _with_derived(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        o = self.opts
        assert o.date_column is not None
        index = batch.schema.get_field_index(o.date_column)
        if index < 0:
            raise SchemaMismatchError(
                str(self.name),
                o.date_column,
                "date or timestamp",
                None,
                hint="the table is partitioned by this date column: include it in the data",
            )
        values = batch.column(index)
        day = values if pa.types.is_date32(values.type) else values.cast(pa.date32())
        if o.granularity in ("month", "year"):
            unit = o.granularity
            import pyarrow.compute as pc  # only here: it costs query processes 10 MiB

            day = pc.floor_temporal(day, unit=unit).cast(pa.date32())
        return batch.append_column(self.derived_column, day)


_sql_text = text_or_null
_dq = ident


def _first_batch(out: pa.Table) -> pa.RecordBatch:
    """DuckDB's result as one record batch (empty input gives an empty batch)."""
    batches = out.combine_chunks().to_batches()
    if batches:
        return batches[0]
    return pa.RecordBatch.from_pylist([], schema=out.schema)
