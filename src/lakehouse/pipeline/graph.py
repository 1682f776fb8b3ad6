"""The dependency graph of a pipeline's datasets: order, cycles, selections."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter

from lakehouse.errors import LakehouseError
from lakehouse.pipeline.errors import PipelineError, Problem
from lakehouse.pipeline.model import Pipeline


def dependencies(pipeline: Pipeline) -> dict[str, list[str]]:
    """Each dataset and the datasets of the pipeline it depends on."""
    ds = pipeline.datasets
    return {name: [d for d in ds[name].depends_on if d in ds and d != name] for name in ds}


def order(pipeline: Pipeline) -> list[str]:
    """Datasets in an order where each comes after what it reads; a cycle is an error
    naming every dataset in it with its file and line."""
    graph = dependencies(pipeline)
    sorter = TopologicalSorter({n: sorted(deps) for n, deps in sorted(graph.items())})
    try:
        return list(sorter.static_order())
    except CycleError as exc:
        cycle: list[str] = list(exc.args[1])
        path = " -> ".join(reversed(cycle))
        problems = [
            Problem(
                pipeline.datasets[n].file,
                pipeline.datasets[n].line,
                f"{n} is part of a cycle: {path}",
                "a dataset cannot read itself through other datasets",
            )
            for n in dict.fromkeys(cycle)
        ]
        raise PipelineError(problems) from exc


def downstream(pipeline: Pipeline, name: str) -> set[str]:
    graph = dependencies(pipeline)
    found: set[str] = set()
    frontier = [name]
    while frontier:
        current = frontier.pop()
        for other, deps in graph.items():
            if current in deps and other not in found:
                found.add(other)
                frontier.append(other)
    return found


def upstream(pipeline: Pipeline, name: str) -> set[str]:
    graph = dependencies(pipeline)
    found: set[str] = set()
    frontier = [name]
    while frontier:
        for dep in graph[frontier.pop()]:
            if dep not in found:
                found.add(dep)
                frontier.append(dep)
    return found


def select(pipeline: Pipeline, selectors: list[str] | None) -> list[str]:
    """The datasets to run, in order. ``name`` is one dataset, ``name+`` it and everything
    downstream, ``+name`` it and everything upstream; names may omit the layer when that
    leaves no doubt."""
    everything = order(pipeline)
    if not selectors:
        return everything
    chosen: set[str] = set()
    for selector in selectors:
        down, up = selector.endswith("+"), selector.startswith("+")
        name = resolve(pipeline, selector.strip("+"))
        chosen.add(name)
        if down:
            chosen |= downstream(pipeline, name)
        if up:
            chosen |= upstream(pipeline, name)
    return [n for n in everything if n in chosen]


def resolve(pipeline: Pipeline, name: str) -> str:
    if name in pipeline.datasets:
        return name
    matches = [n for n in pipeline.datasets if n.split(".")[1] == name]
    if len(matches) == 1:
        return matches[0]
    hint = (
        f"it could be {', '.join(matches)}"
        if matches
        else f"the datasets are {', '.join(sorted(pipeline.datasets))}"
    )
    raise LakehouseError(f"pipeline {pipeline.name} has no dataset {name!r}", hint)
