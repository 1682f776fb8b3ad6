"""The catalog: what tables exist, what they hold, who owns them, how they changed."""

from lakehouse.catalog.store import Catalog, TableInfo

__all__ = ["Catalog", "TableInfo"]
