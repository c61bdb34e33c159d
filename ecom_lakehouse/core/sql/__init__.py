"""SQL over the lake: DuckDB connections, the local catalog, and the asset checks' SQL
(one definition for DuckDB and Athena)."""
