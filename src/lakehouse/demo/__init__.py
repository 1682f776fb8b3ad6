"""The demo: the example platform's sources, generated, and the commands that build it.

``run.py`` is ``lakehouse demo`` (the sources as files, then the ``pipelines/demo``
pipeline over them), ``stream.py`` is ``lakehouse demo --stream`` (a local broker, the
live user events and the stream into bronze). The data comes from ``generators.py`` (the
four sources, deterministic for a seed), ``landing.py`` (the sources as drops of files in
a landing folder) and ``live_events.py`` (user events made as they happen).
"""

from lakehouse.demo.run import LAYER_ORDER, demo_pipeline_folder, run_demo

__all__ = ["LAYER_ORDER", "demo_pipeline_folder", "run_demo"]
