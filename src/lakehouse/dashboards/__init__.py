"""Dashboards as files: YAML in a ``dashboards/`` folder (``reader.py``), checked against
the warehouse (``validate.py``), run for a caller through the API's sandbox (``run.py``),
exported to Grafana (``grafana.py``). Nothing is imported here, so that the CLI starts
without what it does not use."""
