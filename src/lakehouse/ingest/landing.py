"""The demo's landing folder, written by ``lakehouse.demo.landing``."""

from lakehouse.demo.landing import SOURCES, add_drop, read_manifest, write_sources

__all__ = ["SOURCES", "add_drop", "read_manifest", "write_sources"]
