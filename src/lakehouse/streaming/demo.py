"""``lakehouse demo --stream``, which lives in ``lakehouse.demo.stream``."""

from lakehouse.demo.stream import run_stream_demo

__all__ = ["run_stream_demo"]
