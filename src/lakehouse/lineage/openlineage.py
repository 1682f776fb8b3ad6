"""Recorded lineage as OpenLineage run events, for Marquez, DataHub, OpenMetadata and others.

Each job (a pipeline dataset) becomes one COMPLETE ``RunEvent``: its input tables, its
output table with the schema, storage and column-lineage facets, built with the
``openlineage-python`` client classes and serialised with its ``Serde``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openlineage.client.event_v2 import (
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    job_type_job,
    processing_engine_run,
    schema_dataset,
    storage_dataset,
    symlinks_dataset,
)
from openlineage.client.serde import Serde
from openlineage.client.uuid import generate_static_uuid

from lakehouse import __version__

if TYPE_CHECKING:
    from lakehouse.catalog import TableInfo
    from lakehouse.warehouse import Lakehouse

PRODUCER = "https://github.com/lakehouse/lakehouse"
INTEGRATION = "LAKEHOUSE"

# Lakehouse transform -> OpenLineage (type, subtype).
_TRANSFORMATIONS = {
    "identity": ("DIRECT", "IDENTITY"),
    "carried": ("DIRECT", "TRANSFORMATION"),
    "join_key": ("DIRECT", "IDENTITY"),
    "expression": ("DIRECT", "TRANSFORMATION"),
    "aggregation": ("DIRECT", "AGGREGATION"),
    "filter": ("INDIRECT", "FILTER"),
    "join": ("INDIRECT", "JOIN"),
    "group_by": ("INDIRECT", "GROUP_BY"),
    "sort": ("INDIRECT", "SORT"),
}
_STREAMING = {"stream", "streaming", "streaming_table", "realtime"}


def namespace(lh: Lakehouse) -> str:
    """The OpenLineage namespace of a warehouse's tables and jobs."""
    return f"lakehouse://{lh.root}"


def openlineage_events(
    lh: Lakehouse, table: str | None = None, run_id: str | None = None
) -> list[dict[str, Any]]:
    """One COMPLETE run event per job, as OpenLineage JSON objects.

    ``table``: only the jobs that write or read it. ``run_id``: only the edges observed in
    that run, and the event's ``runId`` derived from it. Otherwise each job's definition
    edges together with the edges of its latest run.
    """
    return [Serde.to_dict(event) for event in run_events(lh, table, run_id)]


def write_openlineage(
    lh: Lakehouse,
    path: str | os.PathLike[str],
    table: str | None = None,
    run_id: str | None = None,
) -> int:
    """Write the run events as JSON lines to ``path``; returns how many were written."""
    events = run_events(lh, table, run_id)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as out:
        for event in events:
            out.write(Serde.to_json(event) + "\n")
    return len(events)


def run_events(
    lh: Lakehouse, table: str | None = None, run_id: str | None = None
) -> list[RunEvent]:
    """The run events as ``openlineage-python`` objects (see :func:`openlineage_events`)."""
    rows = lh.catalog.lineage_edges()
    if run_id is not None:
        rows = [r for r in rows if r["run_id"] == run_id]
    jobs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        jobs.setdefault((row["job"], row["target_table"]), []).append(row)
    if table is not None:
        jobs = {
            key: job_rows
            for key, job_rows in jobs.items()
            if key[1] == table or any(r["source_table"] == table for r in job_rows)
        }
    ns = namespace(lh)
    infos: dict[str, TableInfo | None] = {}

    def info(name: str) -> TableInfo | None:
        if name not in infos:
            infos[name] = lh.catalog.get(name)
        return infos[name]

    events = []
    for (job, target), job_rows in sorted(jobs.items()):
        events.append(_event(ns, job, target, job_rows, run_id, info))
    return events


def _event(
    ns: str,
    job: str,
    target: str,
    rows: list[dict[str, Any]],
    run_id: str | None,
    info: Any,
) -> RunEvent:
    recorded = max(datetime.fromisoformat(r["recorded_at"]) for r in rows)
    operation = _operation(rows)
    sources = list(dict.fromkeys(r["source_table"] for r in rows))
    inputs = [InputDataset(namespace=ns, name=s, facets=_dataset_facets(info(s))) for s in sources]
    out_facets = _dataset_facets(info(target))
    lineage = _column_lineage(ns, rows)
    if lineage is not None:
        out_facets["columnLineage"] = lineage
    streaming = operation in _STREAMING or target.startswith("realtime.")
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime=recorded.isoformat(),
        run=Run(
            runId=_run_uuid(job, target, run_id, recorded),
            facets={
                "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                    version=__version__,
                    name="lakehouse",
                    openlineageAdapterVersion=_client_version(),
                    producer=PRODUCER,
                )
            },
        ),
        job=Job(
            namespace=ns,
            name=job,
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="STREAMING" if streaming else "BATCH",
                    integration=INTEGRATION,
                    jobType=operation.upper(),
                    producer=PRODUCER,
                )
            },
        ),
        inputs=inputs,
        outputs=[OutputDataset(namespace=ns, name=target, facets=out_facets)],
        producer=PRODUCER,
    )


def _operation(rows: list[dict[str, Any]]) -> str:
    # Definition edges describe the job as it is now; a run's edges may be older.
    definition = [r["operation"] for r in rows if r["run_id"] is None]
    operation: str = (definition or [rows[-1]["operation"]])[0]
    return operation


def _run_uuid(job: str, target: str, run_id: str | None, recorded: datetime) -> str:
    if run_id is not None:
        try:
            return str(uuid.UUID(run_id))
        except ValueError:
            pass
    data = f"{job}\n{target}\n{run_id or ''}".encode()
    return str(generate_static_uuid(recorded, data))


def _dataset_facets(info: TableInfo | None) -> dict[str, Any]:
    if info is None:
        return {}
    return {
        "schema": schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(
                    name=col["name"],
                    type=str(col.get("type")) if col.get("type") is not None else None,
                    ordinal_position=i,
                )
                for i, col in enumerate(info.columns, start=1)
            ],
            producer=PRODUCER,
        ),
        "storage": storage_dataset.StorageDatasetFacet(
            storageLayer="delta", fileFormat="parquet", producer=PRODUCER
        ),
        "symlinks": symlinks_dataset.SymlinksDatasetFacet(
            identifiers=[
                symlinks_dataset.Identifier(
                    namespace=_location_namespace(info.location),
                    name=info.location,
                    type="TABLE",
                )
            ],
            producer=PRODUCER,
        ),
    }


def _location_namespace(location: str) -> str:
    scheme, sep, rest = location.partition("://")
    if not sep:
        return "file"
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _column_lineage(
    ns: str, rows: Iterable[dict[str, Any]]
) -> column_lineage_dataset.ColumnLineageDatasetFacet | None:
    fields: dict[str, list[column_lineage_dataset.InputField]] = {}
    dataset: list[column_lineage_dataset.InputField] = []
    seen: set[tuple[Any, ...]] = set()
    for row in rows:
        if row["source_column"] is None:
            continue  # table-level edge
        key = (row["source_table"], row["source_column"], row["target_column"], row["transform"])
        if key in seen:
            continue
        seen.add(key)
        kind, subtype = _TRANSFORMATIONS.get(
            row["transform"] or "",
            ("DIRECT", "TRANSFORMATION") if row["target_column"] else ("INDIRECT", None),
        )
        field = column_lineage_dataset.InputField(
            namespace=ns,
            name=row["source_table"],
            field=row["source_column"],
            transformations=[
                column_lineage_dataset.Transformation(
                    type=kind, subtype=subtype, description=row["transform"]
                )
            ],
        )
        if row["target_column"] is None:
            dataset.append(field)
        else:
            fields.setdefault(row["target_column"], []).append(field)
    if not fields and not dataset:
        return None
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            name: column_lineage_dataset.Fields(inputFields=inputs)
            for name, inputs in fields.items()
        },
        dataset=dataset,
        producer=PRODUCER,
    )


def _client_version() -> str | None:
    try:
        return metadata.version("openlineage-python")
    except metadata.PackageNotFoundError:
        return None
