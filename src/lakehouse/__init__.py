"""Lakehouse: a medallion lakehouse on Delta Lake tables."""

from lakehouse.config import TableOptions
from lakehouse.errors import (
    ConcurrentWriteError,
    ConstraintViolationError,
    InvalidDataError,
    InvalidNameError,
    LakehouseError,
    SchemaMismatchError,
    SQLError,
    TableNotFoundError,
    VersionNotFoundError,
)
from lakehouse.sql.result import Result
from lakehouse.warehouse import Lakehouse

__version__ = "0.1.0"

__all__ = [
    "ConcurrentWriteError",
    "ConstraintViolationError",
    "InvalidDataError",
    "InvalidNameError",
    "Lakehouse",
    "LakehouseError",
    "Result",
    "SQLError",
    "SchemaMismatchError",
    "TableNotFoundError",
    "TableOptions",
    "VersionNotFoundError",
]
