"""The tasks an Airflow DAG of a pipeline has: one per dataset (or per layer), each with
the datasets it runs, the tasks it waits for and the ``lakehouse`` command line it calls.
The result is plain data (``build.py`` turns it into a DAG, ``export.py`` into a file)."""

from __future__ import annotations

import re
import shutil
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from lakehouse.errors import LakehouseError
from lakehouse.names import LAYERS
from lakehouse.pipeline.definition import load_pipeline
from lakehouse.pipeline.errors import PipelineError
from lakehouse.pipeline.graph import dependencies, order
from lakehouse.pipeline.model import Pipeline
from lakehouse.pipeline.plan import _parse as parse_inputs

PER = ("dataset", "layer")


def dag_spec(
    path: str | Path,
    *,
    per: str = "dataset",
    dag_id: str | None = None,
    schedule: str | None = None,
    warehouse: str | None = None,
    config: str | None = None,
    profile: str | None = None,
    variables: dict[str, str] | None = None,
    lakehouse_command: str | list[str] | None = None,
) -> dict[str, Any]:
    """The DAG of the pipeline in ``path`` as data: its id, schedule, the command every
    task starts from, and its tasks (``task_id``, ``select``, ``upstream``)."""
    if per not in PER:
        raise LakehouseError(f"unknown --per {per!r}", "use dataset or layer")
    pipeline = load_pipeline(path, variables)
    read_inputs(pipeline)
    tasks = per_dataset(pipeline) if per == "dataset" else per_layer(pipeline)
    folder = str(Path(pipeline.folder).resolve())
    return {
        "pipeline": pipeline.name,
        "folder": folder,
        "dag_id": dag_id or default_dag_id(pipeline.name),
        "schedule": schedule,
        "per": per,
        "command": command(folder, warehouse, config, profile, variables, lakehouse_command),
        "tasks": tasks,
    }


def read_inputs(pipeline: Pipeline) -> None:
    """Each SQL dataset's inputs, from its query (as validation reads them)."""
    problems = [
        p for ds in pipeline.datasets.values() if ds.sql is not None for p in parse_inputs(ds)
    ]
    if problems:
        raise PipelineError(problems)


def per_dataset(pipeline: Pipeline) -> list[dict[str, Any]]:
    graph = dependencies(pipeline)
    return [
        {"task_id": name, "select": [name], "upstream": sorted(graph[name])}
        for name in order(pipeline)
    ]


def per_layer(pipeline: Pipeline) -> list[dict[str, Any]]:
    """One task per layer running its datasets; a layer waits for the layers its datasets
    read. Layers that read each other cannot be tasks of their own."""
    graph = dependencies(pipeline)
    ordered = order(pipeline)
    layers = [layer for layer in LAYERS if any(n.split(".")[0] == layer for n in ordered)]
    reads: dict[str, set[str]] = {layer: set() for layer in layers}
    for name, deps in graph.items():
        reads[name.split(".")[0]] |= {d.split(".")[0] for d in deps} - {name.split(".")[0]}
    try:
        sequence = list(TopologicalSorter({k: sorted(v) for k, v in reads.items()}).static_order())
    except CycleError as exc:
        raise LakehouseError(
            f"the layers of pipeline {pipeline.name} read each other: " + " -> ".join(exc.args[1]),
            "make one task per dataset (--per dataset)",
        ) from exc
    sequence.sort(key=layers.index)  # layer order, which the dependencies allow
    return [
        {
            "task_id": layer,
            "select": [n for n in ordered if n.split(".")[0] == layer],
            "upstream": sorted(reads[layer]),
        }
        for layer in sequence
    ]


def default_dag_id(pipeline: str) -> str:
    return "lakehouse_" + re.sub(r"[^A-Za-z0-9_.-]", "_", pipeline)


def command(
    folder: str,
    warehouse: str | None,
    config: str | None,
    profile: str | None,
    variables: dict[str, str] | None,
    lakehouse_command: str | list[str] | None,
) -> list[str]:
    """``lakehouse [--warehouse W] [--config C] [--profile P] run FOLDER [--var k=v]
    --trigger airflow``; local paths made absolute, since a task runs in a folder of its
    own."""
    if lakehouse_command is None:
        argv = default_command()
    elif isinstance(lakehouse_command, str):
        import shlex

        argv = shlex.split(lakehouse_command)
    else:
        argv = list(lakehouse_command)
    if warehouse:
        argv += ["--warehouse", warehouse if "://" in warehouse else str(Path(warehouse).resolve())]
    if config:
        argv += ["--config", str(Path(config).resolve())]
    if profile:
        argv += ["--profile", profile]
    argv += ["run", folder]
    for key, value in (variables or {}).items():
        argv += ["--var", f"{key}={value}"]
    return argv + ["--trigger", "airflow"]


def default_command() -> list[str]:
    """The ``lakehouse`` executable of this Python environment, else this Python running
    the CLI module."""
    beside = Path(sys.executable).parent / "lakehouse"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("lakehouse")
    return [found] if found else [sys.executable, "-m", "lakehouse.cli"]
