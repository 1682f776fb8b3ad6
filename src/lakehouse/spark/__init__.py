"""Apache Spark as the platform's second engine for pipeline datasets and ad-hoc SQL.

``session.py`` starts the one Spark session of a process (Java and the master checked
first), ``translate.py`` turns the platform's SQL (DuckDB's dialect) into Spark SQL and
finds what cannot be translated, ``inputs.py`` hands Spark the exact parquet files of the
pinned table versions, ``outputs.py`` has Spark's executors write a dataset's files that
the driver commits through the one write path, ``engine.py`` runs a dataset's query and
``routing.py`` picks the engine of a dataset. PySpark is imported only here, and only when
Spark is used.
"""
