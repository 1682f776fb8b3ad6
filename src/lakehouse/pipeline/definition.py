"""Dataset definitions: what a pipeline folder holds, read and checked for form.

A dataset is one file:
- ``.sql``: a header of ``--`` comment lines (YAML: name, kind, keys, expectations...)
  followed by one SELECT;
- ``.yml``/``.yaml``: a header only, for datasets that are not a query (files into bronze);
- ``.py``: functions decorated with ``@dataset(...)`` returning a dataframe or relation.

An optional ``pipeline.yml`` names the pipeline and defines ``vars`` usable as ``${name}``
in paths (``${warehouse}`` and ``${pipeline}`` are always there).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from lakehouse.errors import LakehouseError
from lakehouse.names import LAYERS, parse_table_name
from lakehouse.pipeline.errors import PipelineError, Problem
from lakehouse.pipeline.model import Dataset, Pipeline
from lakehouse.pipeline.python import collect
from lakehouse.pipeline.quality import ExpectationError, parse_expectation

__all__ = ["Dataset", "Pipeline", "build_dataset", "load_pipeline", "split_header"]

# Reports a problem at a header key: the key, the message and a hint.
Bad = Callable[..., None]

KINDS = ("append", "materialized_view", "view", "cdc", "files", "api", "database")
TABLE_OPTIONS = (
    "partition_by",
    "date_column",
    "granularity",
    "compression",
    "retention_days",
    "description",
    "owner",
    "tags",
    "column_tags",
)
HEADER_KEYS = (
    "name",
    "table_format",
    "layer",
    "kind",
    "keys",
    "sequence_by",
    "delete_when",
    "scd",
    "valid_time",
    "except_columns",
    "stream",
    "refresh",
    "engine",
    "expectations",
    "inputs",
    "path",
    "format",
    "source_system",
    "api",
    "database",
) + TABLE_OPTIONS
FILE_FORMATS = ("csv", "jsonl", "json", "parquet")
TABLE_FORMATS = ("delta", "iceberg")  # a table's format when the dataset makes it


# -- reading ------------------------------------------------------------------------------
def load_pipeline(folder: str | Path, variables: dict[str, str] | None = None) -> Pipeline:
    """Read every definition in ``folder`` (and its subfolders). Problems of form (bad
    header, duplicate names, unreadable SQL) are collected and raised together."""
    root = Path(folder)
    if not root.is_dir():
        raise LakehouseError(f"no pipeline folder {root}", "give the folder of dataset files")
    problems: list[Problem] = []
    name, pvars, description = root.resolve().name, {}, None
    config = root / "pipeline.yml"
    if config.exists():
        try:
            data = yaml.safe_load(config.read_text()) or {}
            if not isinstance(data, dict):
                raise yaml.YAMLError("pipeline.yml is a mapping (name, vars, description)")
            name = str(data.get("name", name))
            pvars = {str(k): str(v) for k, v in (data.get("vars") or {}).items()}
            description = data.get("description")
        except yaml.YAMLError as exc:
            problems.append(Problem(config, _yaml_line(exc), f"unreadable pipeline.yml: {exc}"))
    pvars.update(variables or {})
    datasets: dict[str, Dataset] = {}
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix in (".sql", ".yml", ".yaml", ".py")
        and p != config
        and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    )
    for path in files:
        try:
            found = _read_file(path, root)
        except PipelineError as exc:
            problems += exc.problems
            continue
        for ds in found:
            if ds.name in datasets:
                other = datasets[ds.name]
                problems.append(
                    Problem(
                        path,
                        ds.line,
                        f"{ds.name} is defined twice (also in {other.file}:{other.line})",
                        "one file per dataset",
                    )
                )
                continue
            datasets[ds.name] = ds
    if problems:
        raise PipelineError(problems)
    if not datasets:
        raise LakehouseError(
            f"no dataset definitions in {root}",
            "add .sql files (a header and a SELECT), .yml files or .py files",
        )
    return Pipeline(name, root, datasets, pvars, description)


def _read_file(path: Path, root: Path) -> list[Dataset]:
    if path.suffix == ".py":
        return _read_python(path)
    text = path.read_text()
    if path.suffix in (".yml", ".yaml"):
        header, lines = _parse_yaml(text, path, 1)
        return [build_dataset(path, root, header, lines, sql=None, sql_line=1, default="files")]
    header_text, sql, sql_line = split_header(text)
    header, lines = _parse_yaml(header_text, path, 1)
    if not sql.strip():
        raise PipelineError([Problem(path, sql_line, "no SELECT after the header")])
    return [build_dataset(path, root, header, lines, sql=sql, sql_line=sql_line)]


def _read_python(path: Path) -> list[Dataset]:
    """The datasets the ``@dataset`` functions of a Python file define."""
    out, problems = [], []
    for header, fn in collect(path):
        line = inspect.getsourcelines(fn)[1]
        if "inputs" not in header:
            problems.append(
                Problem(path, line, f"{header['name']}: declare the tables it reads: inputs=[...]")
            )
            continue
        try:
            out.append(
                build_dataset(
                    path, None, header, {}, sql=None, sql_line=line, line=line, function=fn
                )
            )
        except PipelineError as exc:
            problems += exc.problems
    if problems:
        raise PipelineError(problems)
    return out


def split_header(text: str) -> tuple[str, str, int]:
    """The leading ``--`` comment lines as YAML, the SQL after them, and the SQL's line."""
    lines = text.splitlines()
    header = []
    i = 0
    while i < len(lines) and (lines[i].startswith("--") or not lines[i].strip()):
        line = lines[i]
        header.append(re.sub(r"^-- ?", "", line) if line.startswith("--") else "")
        i += 1
    return "\n".join(header), "\n".join(lines[i:]), i + 1


def _parse_yaml(text: str, path: Path, first_line: int) -> tuple[dict[str, Any], dict[str, int]]:
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text) if node is not None else {}
    except yaml.YAMLError as exc:
        line = _yaml_line(exc)
        raise PipelineError(
            [Problem(path, first_line + line - 1 if line else 0, f"unreadable header: {exc}")]
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PipelineError([Problem(path, first_line, "the header is a YAML mapping")])
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            lines[str(key_node.value)] = first_line + key_node.start_mark.line
            if key_node.value == "expectations" and isinstance(value_node, yaml.SequenceNode):
                for i, item in enumerate(value_node.value):
                    lines[f"expectations.{i}"] = first_line + item.start_mark.line
    return data, lines


def _yaml_line(exc: yaml.YAMLError) -> int:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else 0


def build_dataset(
    path: Path,
    root: Path | None,
    header: dict[str, Any],
    lines: dict[str, int],
    *,
    sql: str | None,
    sql_line: int,
    default: str = "materialized_view",
    line: int = 1,
    function: Callable[..., Any] | None = None,
) -> Dataset:
    """A dataset from its header, checking every key; all problems are raised together."""
    problems: list[Problem] = []

    def bad(key: str, message: str, hint: str | None = None) -> None:
        problems.append(Problem(path, lines.get(key, line), message, hint))

    for key in header:
        if key not in HEADER_KEYS:
            close = [k for k in HEADER_KEYS if k.startswith(str(key)[:3])]
            bad(key, f"unknown header key {key!r}", f"did you mean {close[0]}?" if close else None)
    name = _dataset_name(path, root, header, bad)
    kind = str(header.get("kind", default))
    if kind not in KINDS:
        bad("kind", f"unknown kind {kind!r}", f"the kinds are {', '.join(KINDS)}")
    ds = Dataset(name=name, kind=kind, file=path, line=line, sql=sql, sql_line=sql_line)
    ds.function, ds.lines = function, lines
    ds.keys = _str_list(header.get("keys", []), "keys", bad)
    ds.except_columns = _str_list(header.get("except_columns", []), "except_columns", bad)
    if "stream" in header:
        ds.stream = _str_list(header["stream"], "stream", bad)
    if "inputs" in header:
        ds.inputs = _str_list(header["inputs"], "inputs", bad)
    for key in ("sequence_by", "delete_when", "valid_time", "path", "format", "source_system"):
        if key in header and header[key] is not None:
            setattr(ds, key, str(header[key]))
    for key in ("api", "database"):
        if key in header:
            if isinstance(header[key], dict):
                setattr(ds, key, dict(header[key]))
            else:
                bad(key, f"{key} is a mapping (see docs/SOURCES.md)")
    ds.refresh = str(header.get("refresh", "auto"))
    if ds.refresh not in ("auto", "full"):
        bad("refresh", f"refresh is auto or full, not {ds.refresh!r}")
    if "engine" in header:
        ds.engine = str(header["engine"])
        if ds.engine not in ("duckdb", "spark", "auto"):
            bad("engine", f"engine is duckdb, spark or auto, not {ds.engine!r}")
    try:
        ds.scd = int(header.get("scd", 1))
    except (TypeError, ValueError):
        ds.scd = 0
    if ds.scd not in (1, 2):
        bad("scd", "scd is 1 (latest state) or 2 (history)")
    ds.options = {k: header[k] for k in TABLE_OPTIONS if k in header}
    if ds.keys:
        ds.options["keys"] = ds.keys
    if "table_format" in header:
        if header["table_format"] not in TABLE_FORMATS:
            bad("table_format", "table_format is delta or iceberg")
        else:
            ds.options["format"] = header["table_format"]
    for k in ("partition_by", "tags"):
        if k in ds.options:
            ds.options[k] = _str_list(ds.options[k], k, bad)
    _check_table_options(ds.options, bad)
    raw = header.get("expectations", [])
    if not isinstance(raw, list):
        bad("expectations", "expectations is a list")
        raw = []
    for i, item in enumerate(raw):
        try:
            ds.expectations.append(parse_expectation(item, lines.get(f"expectations.{i}", line)))
        except ExpectationError as exc:
            problems.append(Problem(path, lines.get(f"expectations.{i}", line), str(exc)))
    names = [e.name for e in ds.expectations]
    for dup in {n for n in names if names.count(n) > 1}:
        bad("expectations", f"two expectations are named {dup}")
    _check_kind(ds, bad)
    if problems:
        raise PipelineError(problems)
    return ds


def _dataset_name(path: Path, root: Path | None, header: dict[str, Any], bad: Bad) -> str:
    given = header.get("name")
    layer = header.get("layer")
    if given is None:
        if layer is None and root is not None:
            parts = path.relative_to(root).parts
            layer = parts[0] if len(parts) > 1 and parts[0] in LAYERS else None
        if layer is None:
            bad("name", "the dataset has no name", "add `name: layer.table` to its header")
            return f"silver.{path.stem}"
        given = f"{layer}.{path.stem}"
    elif "." not in str(given) and layer is not None:
        given = f"{layer}.{given}"
    try:
        return str(parse_table_name(str(given)))
    except LakehouseError as exc:
        bad("name", str(exc), exc.hint)
        return f"silver.{path.stem}"


def _str_list(value: Any, key: str, bad: Bad) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    bad(key, f"{key} is a name or a list of names")
    return []


def _check_source(ds: Dataset, bad: Bad) -> None:
    """An api or database dataset: its source's settings, in bronze, no checks."""
    if ds.layer != "bronze":
        bad("name", f"{ds.kind} sources are ingested into bronze, not {ds.layer}")
    if ds.expectations:
        bad("expectations", f"{ds.kind} datasets keep every record; put checks downstream")
    given = getattr(ds, ds.kind)
    if given is None:
        bad(ds.kind, f"a {ds.kind} dataset needs {ds.kind}: (its source, see docs/SOURCES.md)")
        return
    if ds.kind == "api":
        from pydantic import ValidationError

        from lakehouse.ingest.rest_config import RestSource

        try:
            RestSource.model_validate({**given, "into": ds.name})
        except ValidationError as exc:
            for e in exc.errors():
                where = ".".join(str(p) for p in e["loc"])
                bad("api", f"api.{where}: {e['msg']}")
        return
    unknown = sorted(set(given) - {"url", "table", "incremental_column", "parallel"})
    if unknown:
        bad(
            "database",
            f"unknown database key(s) {', '.join(unknown)}",
            "the keys are url, table, incremental_column, parallel",
        )
    for key in ("url", "table"):
        if not isinstance(given.get(key), str):
            bad("database", f"database.{key} is required (a text)")


def _check_table_options(options: dict[str, Any], bad: Bad) -> None:
    """Descriptive options of the right shape (``column_tags`` normalised to lists)."""
    for key in ("description", "owner", "date_column", "granularity", "compression"):
        value = options.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            options[key] = str(value)  # YAML read `owner: 42` as a number
        elif key in options and not isinstance(value, str):
            bad(key, f"{key} is a text, not {type(value).__name__}")
    if "retention_days" in options:
        days = options["retention_days"]
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            bad("retention_days", "retention_days is a whole number of days (0 or more)")
    if "column_tags" in options:
        given = options["column_tags"]
        if not isinstance(given, dict) or not all(isinstance(c, str) for c in given):
            bad("column_tags", "column_tags maps columns to tags, e.g. {email: [pii]}")
            options["column_tags"] = {}
            return
        options["column_tags"] = {
            column: _str_list(tags, "column_tags", bad) for column, tags in given.items()
        }


def _check_kind(ds: Dataset, bad: Bad) -> None:
    if ds.kind in ("api", "database"):
        _check_source(ds, bad)
        return
    if ds.kind == "files":
        if not ds.path:
            bad("path", "a files dataset needs path: (the folder to ingest)")
        if ds.format is not None and ds.format not in FILE_FORMATS:
            bad("format", f"unknown format {ds.format!r}", f"one of {', '.join(FILE_FORMATS)}")
        if ds.layer != "bronze":
            bad("name", f"files are ingested into bronze, not {ds.layer}")
        if ds.expectations:
            bad("expectations", "files datasets keep every record; put checks downstream")
        return
    if ds.sql is None and ds.function is None:
        bad("kind", f"a {ds.kind} dataset needs a SELECT (a .sql file) or a function")
    if ds.kind == "cdc":
        if not ds.keys:
            bad("keys", "a cdc dataset needs keys: (the columns that identify a row)")
        if not ds.sequence_by:
            bad("sequence_by", "a cdc dataset needs sequence_by: (the column ordering changes)")
    elif ds.scd != 1 or ds.delete_when or ds.valid_time:
        bad("scd", "scd, delete_when and valid_time go with kind: cdc")
    if ds.kind == "view" and ds.expectations:
        bad("expectations", "a view stores nothing to check; make it a materialized_view")
    if ds.kind == "view" and ds.function is not None:
        bad("kind", "a view is SQL; a Python dataset is stored (materialized_view or append)")
