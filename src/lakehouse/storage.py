"""Where a warehouse keeps its tables: the storage root (a local folder or an object-store
URI), the options to reach it, each table's location and the catalog that lists them.

``Lakehouse`` builds one ``Storage`` and hands it to the table format and the SQL engine,
which need nothing else of it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

from lakehouse.catalog.store import Catalog
from lakehouse.config import LAYER_DEFAULTS, TableOptions
from lakehouse.errors import LakehouseError
from lakehouse.names import TableName
from lakehouse.tables.snapshot import is_local

CATALOG_FILE = "_catalog.db"


class Locations(Protocol):
    """Anything that says where a table's files are and how to reach them (a ``Storage``,
    or the ``Lakehouse`` that holds one)."""

    @property
    def storage_options(self) -> dict[str, str] | None: ...

    def table_uri(self, name: TableName) -> str: ...


class Storage:
    """A warehouse's storage root, its storage options, its table locations and its
    catalog.

    ``root`` is a folder or an object-store URI such as ``s3://bucket/prefix``. The
    catalog is a SQLite file in the warehouse folder unless ``catalog_url`` (or
    ``LAKEHOUSE_CATALOG_URL``) names another database."""

    def __init__(
        self,
        root: str,
        *,
        catalog_url: str | None = None,
        storage_options: dict[str, str] | None = None,
        layer_defaults: dict[str, TableOptions] | None = None,
    ) -> None:
        if not root:
            raise LakehouseError("the warehouse location is empty")
        self.local = is_local(root)
        if self.local:
            path = Path(root.removeprefix("file://")).expanduser().resolve()
            if path.exists() and not path.is_dir():
                raise LakehouseError(f"warehouse {path} is a file, not a folder")
            path.mkdir(parents=True, exist_ok=True)
            self.root = str(path)
        else:
            self.root = root.rstrip("/")
        self.storage_options = storage_options
        self.layer_defaults = layer_defaults or dict(LAYER_DEFAULTS)
        url = catalog_url or os.environ.get("LAKEHOUSE_CATALOG_URL")
        if url is None:
            if self.local:
                url = f"sqlite:///{Path(self.root) / CATALOG_FILE}"
            else:
                digest = hashlib.sha256(self.root.encode()).hexdigest()[:16]
                home = Path(os.environ.get("LAKEHOUSE_HOME", Path.home() / ".lakehouse"))
                url = f"sqlite:///{home / 'catalogs' / (digest + '.db')}"
        self.catalog = Catalog(url)

    def __repr__(self) -> str:
        return f"<Storage {self.root}>"

    def table_uri(self, name: TableName) -> str:
        if self.local:
            return str(Path(self.root) / name.layer / name.name)
        return f"{self.root}/{name.layer}/{name.name}"
