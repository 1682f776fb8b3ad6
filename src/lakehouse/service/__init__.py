"""What the CLI, the API, the web UI and a scheduler all do, as plain Python functions
over a :class:`~lakehouse.warehouse.Lakehouse`: they return plain data (dicts, lists,
dataclasses, Arrow) and raise the project's errors; none prints or speaks HTTP.

- ``runs``: start a pipeline run in this process; list runs and their figures.
- ``launcher``: start a run in a child process and follow it until it has records.
- ``pipelines``: the pipelines found in a folder.
- ``quality``: a table's expectation results and the overview of every table.
- ``restore``: restore a table to an earlier version, its inputs and quarantine too.
- ``replay``: send a dataset's quarantined rows through its checks again.
- ``access``: API tokens and grants.
- ``sources``: a database table or a REST API into bronze.

The core (tables, catalog, SQL, storage) never imports this package.
"""
