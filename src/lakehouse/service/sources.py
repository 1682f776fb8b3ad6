"""Loading sources into bronze: a database table (whole or incrementally), a REST API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakehouse.warehouse import Lakehouse


def ingest_database(
    lh: Lakehouse,
    url: str,
    table: str,
    into: str,
    *,
    incremental_column: str | None = None,
    full: bool = False,
    source_system: str | None = None,
    parallel: int | None = None,
) -> dict[str, Any]:
    """Load a database table into a bronze table (see ``lakehouse.ingest.database``).
    Returns the figures: ``rows`` landed, ``read``, ``already_held``, ``version``, the
    ``mark`` before and after, ``schema_changes``."""
    from lakehouse.ingest.database import ingest_table

    report = ingest_table(
        lh,
        url,
        table,
        into,
        incremental_column=incremental_column,
        full=full,
        source_system=source_system,
        parallel=parallel,
    )
    return report.as_dict()


def ingest_api(lh: Lakehouse, file: str, *, into: str | None = None) -> dict[str, Any]:
    """Load the REST source a YAML file describes into bronze (see
    ``lakehouse.ingest.rest``). Returns the figures: ``pages``, ``records``, ``rows``
    landed, ``already_held``, ``quarantined``, ``retries``, the ``mark`` before and
    after."""
    from lakehouse.ingest.rest import ingest_api as load
    from lakehouse.ingest.rest_config import load_source

    return load(lh, load_source(file), into=into).as_dict()
