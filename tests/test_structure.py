"""The package's layering: the core (tables, SQL) does not reach up into the
``Lakehouse`` facade, no modules import each other in a circle, and the table format and
engine interfaces are fully implemented."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import lakehouse

SRC = Path(lakehouse.__file__).parent


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(module: str, path: Path) -> set[str]:
    """The lakehouse modules ``module`` imports anywhere in its body (function-local and
    TYPE_CHECKING imports included). ``from pkg import name`` imports ``pkg``, and
    ``pkg.name`` too when that is a module."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES and m != module}


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each back edge a depth-first search meets."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                found.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_core_does_not_import_the_facade():
    offenders = sorted(
        module
        for module, imported in GRAPH.items()
        if module.startswith(("lakehouse.tables", "lakehouse.sql"))
        and "lakehouse.warehouse" in imported
    )
    assert offenders == []


def test_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_relative_imports_are_resolved():
    assert "lakehouse.catalog.store" in GRAPH["lakehouse.catalog"]
    assert "lakehouse.tables.snapshot" in GRAPH["lakehouse.storage"]


def test_no_import_cycles():
    cycles = [" -> ".join(cycle) for cycle in _cycles(GRAPH)]
    assert cycles == []


def _external_imports(path: Path) -> set[str]:
    """The top-level packages outside lakehouse a module imports anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_table_format_reaches_delta_lake():
    """Delta Lake's library is used in ``tables/`` only: everything above reaches a table
    through the format interface (a second format is then one new module there)."""
    users = sorted(m for m, p in MODULES.items() if "deltalake" in _external_imports(p))
    assert users, "no module imports deltalake: the check looks at the wrong place"
    assert [m for m in users if not m.startswith("lakehouse.tables.")] == []


def test_only_the_table_format_reaches_iceberg():
    """pyiceberg too is used in ``tables/`` only, and only by the Iceberg modules."""
    users = sorted(m for m, p in MODULES.items() if "pyiceberg" in _external_imports(p))
    assert users, "no module imports pyiceberg: the check looks at the wrong place"
    assert [m for m in users if not m.startswith("lakehouse.tables.iceberg_")] == []


def _assert_implements(implementation: type, interface: type) -> None:
    """``implementation`` is a concrete subclass of ``interface`` with every abstract
    member, each taking the parameters the interface names."""
    assert issubclass(implementation, interface)
    abstract = sorted(getattr(interface, "__abstractmethods__", ()))
    assert abstract, "the interface declares no members"
    missing = [
        name
        for name in abstract
        if getattr(implementation, name, None) is None
        or getattr(getattr(implementation, name), "__isabstractmethod__", False)
    ]
    assert missing == []
    assert not getattr(implementation, "__abstractmethods__", ())
    for name in abstract:
        wanted = inspect.signature(getattr(interface, name)).parameters
        given = inspect.signature(getattr(implementation, name)).parameters
        assert list(wanted) == list(given), name


def test_table_format_fully_implemented_by_delta():
    from lakehouse.tables.delta_format import DELTA, DeltaFormat
    from lakehouse.tables.delta_read import DeltaLatest
    from lakehouse.tables.format import Latest, TableFormat

    _assert_implements(DeltaFormat, TableFormat)
    _assert_implements(DeltaLatest, Latest)
    assert DELTA.name == "delta"


def test_table_format_fully_implemented_by_iceberg():
    from lakehouse.tables.format import Latest, TableFormat
    from lakehouse.tables.iceberg_format import ICEBERG, IcebergFormat, IcebergLatest

    _assert_implements(IcebergFormat, TableFormat)
    _assert_implements(IcebergLatest, Latest)
    assert ICEBERG.name == "iceberg"


def test_engine_interface_fully_implemented_by_duckdb():
    from lakehouse.sql.engine import SQLEngine
    from lakehouse.sql.engine_api import Engine

    _assert_implements(SQLEngine, Engine)
