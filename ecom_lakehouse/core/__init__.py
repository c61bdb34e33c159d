"""The work itself, without Dagster (the Spark job ships the part it imports), by stage:
``lake`` (where things are), ``read`` (files into Arrow), ``validate`` (rows against their
contract), ``tables`` (the Delta tables: merge, evolution, maintenance, history), ``kpis``
and ``sql`` (DuckDB, the catalog, the checks' SQL); ``pipeline`` is a load's steps across
them (validate a batch, merge it, archive its files)."""
