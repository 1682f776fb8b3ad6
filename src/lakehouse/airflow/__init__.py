"""Pipelines as Apache Airflow DAGs: one task per dataset (or per layer), dependencies from
the pipeline's graph, each task a ``lakehouse run --select ... --trigger airflow``.

``pipeline_dag`` builds the DAG where lakehouse and Airflow share a Python environment;
``export_dag`` writes a DAG file that needs only Airflow (``lakehouse airflow export``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from lakehouse.airflow.build import build_dag
from lakehouse.airflow.export import render
from lakehouse.airflow.tasks import dag_spec
from lakehouse.errors import LakehouseError

__all__ = ["dag_spec", "export_dag", "pipeline_dag", "render"]


def pipeline_dag(
    path: str | Path,
    schedule: str | None = None,
    dag_id: str | None = None,
    per: str = "dataset",
    warehouse: str | None = None,
    config: str | None = None,
    profile: str | None = None,
    lakehouse_command: str | list[str] | None = None,
    variables: dict[str, str] | None = None,
    **dag_kwargs: Any,
) -> Any:
    """An Airflow DAG running the pipeline in ``path``: one task per dataset (``per=
    "layer"``: per layer), each a lakehouse run of its selection with trigger ``airflow``.
    ``dag_kwargs`` go to Airflow's ``DAG``."""
    if importlib.util.find_spec("airflow") is None:
        raise LakehouseError(
            "Apache Airflow is not installed in this Python environment",
            "install apache-airflow, or write a DAG file that needs only Airflow: "
            "lakehouse airflow export FOLDER",
        )
    spec = dag_spec(
        path,
        per=per,
        dag_id=dag_id,
        schedule=schedule,
        warehouse=warehouse,
        config=config,
        profile=profile,
        variables=variables,
        lakehouse_command=lakehouse_command,
    )
    return build_dag(spec, **dag_kwargs)


def export_dag(path: str | Path, out: str | Path, **options: Any) -> dict[str, Any]:
    """Write the DAG file of the pipeline in ``path`` to ``out``; ``options`` are those of
    ``dag_spec``. Returns the spec written."""
    spec = dag_spec(path, **options)
    Path(out).write_text(render(spec), encoding="utf-8")
    return spec
