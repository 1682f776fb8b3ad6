"""When a materialized view can be refreshed incrementally, and by which key.

A view that aggregates one table (``SELECT ... FROM t [WHERE ...] GROUP BY ...``, no joins,
window functions, DISTINCT or LIMIT) can be refreshed by recomputing only the groups the new
rows fall in: the groups of one key (the view's ``date_column`` if it is a group key, else
the first group key) found in the new rows are recomputed from all the table's rows with
that key, and replace those groups in the view. Anything else is recomputed whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

NONDETERMINISTIC = ("now", "current_timestamp", "current_date", "random", "uuid", "gen_random_uuid")


@dataclass(frozen=True)
class RefreshKey:
    column: str  # the view's output column
    expression: str  # the same value computed over the source's rows (DuckDB SQL)
    source: str  # layer.table


def refresh_key(
    sql: str, inputs: list[str], date_column: str | None
) -> tuple[RefreshKey | None, str]:
    """The key an incremental refresh goes by, or None with the reason it cannot."""
    if len(inputs) != 1:
        return None, "reads more than one table"
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        return None, "not analysable"
    if not isinstance(tree, exp.Select):
        return None, "not a single SELECT"
    if tree.args.get("with_") or tree.args.get("with"):
        return None, "uses WITH"
    if tree.args.get("joins"):
        return None, "joins tables"
    for node_type, why in (
        (exp.Window, "uses window functions"),
        (exp.Subquery, "has subqueries"),
        (exp.Limit, "has LIMIT"),
        (exp.Qualify, "has QUALIFY"),
    ):
        if tree.find(node_type) is not None:
            return None, why
    if tree.args.get("distinct"):
        return None, "is DISTINCT"
    for fn in tree.find_all(exp.Func):
        if fn.sql_name().lower() in NONDETERMINISTIC or type(fn).__name__.lower() in (
            "currenttimestamp",
            "currentdate",
            "rand",
        ):
            return None, f"calls {fn.sql_name()}"
    group = tree.args.get("group")
    if group is None:
        return None, "does not GROUP BY"
    items = {(s.alias_or_name): s for s in tree.selects}
    keys: list[tuple[str, exp.Expr]] = []
    if group.args.get("all"):
        for name, item in items.items():
            inner = item.this if isinstance(item, exp.Alias) else item
            if inner.find(exp.AggFunc) is None:
                keys.append((name, inner))
    else:
        for g in group.expressions:
            found = _output_for(g, tree.selects)
            if found is not None:
                keys.append(found)
    if not keys:
        return None, "its group keys are not output columns"
    chosen = next((k for k in keys if k[0] == date_column), keys[0])
    expression = chosen[1].copy()
    for column in expression.find_all(exp.Column):
        column.set("table", None)
    return RefreshKey(chosen[0], expression.sql(dialect="duckdb"), inputs[0]), ""


def _output_for(g: exp.Expr, selects: list[exp.Expr]) -> tuple[str, exp.Expr] | None:
    """The output column a GROUP BY item is (by alias, by position or by expression)."""
    if isinstance(g, exp.Literal) and g.is_int:
        index = int(g.this) - 1
        if 0 <= index < len(selects):
            item = selects[index]
            return item.alias_or_name, item.this if isinstance(item, exp.Alias) else item
        return None
    for item in selects:
        inner = item.this if isinstance(item, exp.Alias) else item
        if isinstance(g, exp.Column) and not g.table and g.name == item.alias_or_name:
            return item.alias_or_name, inner
        if inner == g:
            return item.alias_or_name, inner
    return None
