"""Declarative pipelines: a folder of dataset definitions, validated as a whole, run in
dependency order, each dataset processing only what is new since the last run."""

from lakehouse.pipeline.definition import Dataset, Pipeline, load_pipeline
from lakehouse.pipeline.errors import PipelineError, Problem, RunFailed
from lakehouse.pipeline.plan import Plan, validate
from lakehouse.pipeline.python import dataset
from lakehouse.pipeline.records import DatasetRun, RunReport
from lakehouse.pipeline.run import run_pipeline

__all__ = [
    "Dataset",
    "DatasetRun",
    "Pipeline",
    "PipelineError",
    "Plan",
    "Problem",
    "RunFailed",
    "RunReport",
    "dataset",
    "load_pipeline",
    "run_pipeline",
    "validate",
]
