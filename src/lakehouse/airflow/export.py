"""A standalone Airflow DAG file for a pipeline: the tasks and their dependencies baked
in, the DAG built by the code of ``build.py`` copied into the file, so that Airflow parses
it with nothing of lakehouse installed."""

from __future__ import annotations

import ast
import pprint
from pathlib import Path
from typing import Any

import lakehouse.airflow.build as build


def render(spec: dict[str, Any]) -> str:
    """The text of the DAG file of ``spec``."""
    source = Path(build.__file__).read_text(encoding="utf-8")
    body = _without_docstring(source)
    head = (
        f'"""Airflow DAG {spec["dag_id"]}: lakehouse pipeline {spec["pipeline"]}, '
        f"one task per {spec['per']}.\n\n"
        "Written by `lakehouse airflow export`; export again when the pipeline's datasets "
        "or their\ninputs change. Each task runs `lakehouse run FOLDER --select ... "
        "--trigger airflow`.\n"
        '"""\n\n'
    )
    spec_text = pprint.pformat(spec, width=96, sort_dicts=False)
    return head + body.rstrip() + f"\n\n\nSPEC = {spec_text}\n\ndag = build_dag(SPEC)\n"


def _without_docstring(source: str) -> str:
    tree = ast.parse(source)
    first = tree.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        lines = source.splitlines(keepends=True)
        assert first.end_lineno is not None
        return "".join(lines[first.end_lineno :]).lstrip("\n")
    return source
