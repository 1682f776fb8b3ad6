"""SQL over every table: ``layer.table`` names, time travel, one reader path."""

from lakehouse.sql.engine import SQLEngine
from lakehouse.sql.result import Result

__all__ = ["Result", "SQLEngine"]
