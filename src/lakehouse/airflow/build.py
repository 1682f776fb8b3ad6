"""An Airflow DAG from a pipeline's task list: one task per entry, each running
``lakehouse run FOLDER --select ... --trigger airflow``, with the dependencies the list
gives.

This module needs only Airflow and the standard library: ``lakehouse airflow export``
copies it into the DAG file it writes, so that file parses where Airflow alone is
installed, and ``lakehouse.airflow.pipeline_dag`` builds its DAG with the same code.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from typing import Any

# Each task is its own lakehouse run, named after the Airflow run, task and try (Airflow
# puts these in the task's environment), so a retry is another run with its own records.
RUN_ID = '"airflow-${AIRFLOW_CTX_DAG_RUN_ID}-${AIRFLOW_CTX_TASK_ID}-${AIRFLOW_CTX_TRY_NUMBER}"'


def task_command(spec: dict[str, Any], selection: list[str]) -> str:
    """The shell command of a task that runs ``selection`` of the spec's pipeline."""
    argv = list(spec["command"])
    for name in selection:
        argv += ["--select", name]
    return shlex.join(argv) + " --run-id " + RUN_ID


def build_dag(spec: dict[str, Any], **dag_kwargs: Any) -> Any:
    """The DAG of ``spec`` (``lakehouse.airflow.tasks.dag_spec``); ``dag_kwargs`` go to
    Airflow's ``DAG`` and win over the defaults. One task runs at a time (the pipeline's
    lock admits one run of it) and one DAG run at a time."""
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG

    options: dict[str, Any] = {
        "dag_id": spec["dag_id"],
        "schedule": spec.get("schedule"),
        "start_date": datetime(2026, 1, 1, tzinfo=UTC),
        "catchup": False,
        "max_active_runs": 1,
        "max_active_tasks": 1,
        "tags": ["lakehouse", "pipeline:" + spec["pipeline"]],
        "doc_md": f"Lakehouse pipeline `{spec['pipeline']}` ({spec['folder']}), "
        f"one task per {spec['per']}.",
    }
    options.update(dag_kwargs)
    dag = DAG(**options)
    tasks = {}
    for item in spec["tasks"]:
        tasks[item["task_id"]] = BashOperator(
            task_id=item["task_id"],
            bash_command=task_command(spec, item["select"]),
            doc_md="Runs " + ", ".join(item["select"]) + " as one lakehouse run.",
            dag=dag,
        )
    for item in spec["tasks"]:
        for upstream in item["upstream"]:
            tasks[upstream] >> tasks[item["task_id"]]
    return dag
