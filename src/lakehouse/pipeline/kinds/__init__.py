"""The kinds of dataset a pipeline runs, one module each; ``kind_for`` picks a dataset's."""

from __future__ import annotations

from lakehouse.pipeline.kinds.append import Append
from lakehouse.pipeline.kinds.base import Kind
from lakehouse.pipeline.kinds.cdc import Cdc
from lakehouse.pipeline.kinds.files import Files
from lakehouse.pipeline.kinds.materialized_view import MaterializedView
from lakehouse.pipeline.kinds.sources import Api, Database
from lakehouse.pipeline.kinds.view import View
from lakehouse.pipeline.model import Dataset

KINDS: dict[str, Kind] = {
    "api": Api(),
    "database": Database(),
    "append": Append(),
    "cdc": Cdc(),
    "files": Files(),
    "materialized_view": MaterializedView(),
    "view": View(),
}


def kind_for(ds: Dataset) -> Kind:
    return KINDS[ds.kind]
