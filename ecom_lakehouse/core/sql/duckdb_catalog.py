"""The local catalog: a DuckDB file of views over the Delta tables (and the rejected rows).

The catalog file is rebuilt whole and swapped in atomically, so a reader never sees it
half-written and never waits for a writer's lock.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ecom_lakehouse.contracts import DatasetContract, TableSpec
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.sql.duckdb_sql import connect
from ecom_lakehouse.core.tables.delta import table_exists

CATALOG_FILE = "lakehouse.duckdb"


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    location: str
    kind: str  # "delta" or "rejected records"


def catalog_entries(lake: Lake, specs: Iterable[TableSpec]) -> list[CatalogEntry]:
    """A view per existing Delta table, and per dataset that has rejected rows."""
    entries = []
    for spec in specs:
        table = lake.url(layout.table_path(spec.name))
        if table_exists(table, lake.storage_options()):
            entries.append(CatalogEntry(spec.name, table, "delta"))
        if not isinstance(spec, DatasetContract):
            continue  # only datasets have rejected rows
        rejects = layout.rejected_records_prefix(spec.name)
        if next(iter(lake.list(rejects)), None) is not None:
            entries.append(
                CatalogEntry(f"rejected_{spec.name}", lake.url(rejects), "rejected records")
            )
    return entries


def _view_sql(entry: CatalogEntry) -> str:
    if entry.kind == "delta":
        source = f"delta_scan('{entry.location}')"
    else:
        source = f"read_parquet('{entry.location}**/*.parquet', union_by_name = true)"
    return f'CREATE OR REPLACE VIEW "{entry.name}" AS SELECT * FROM {source}'


CATALOG_KEY = layout.CATALOG + CATALOG_FILE


def catalog_location(lake: Lake, path: Path | None = None) -> str:
    """Where the catalog file is: ``path`` when given (a local file), else in the lake itself
    (``catalog/lakehouse.duckdb``), so it follows the lake wherever it is queried from."""
    return str(path) if path else lake.url(CATALOG_KEY)


def rebuild_catalog(
    lake: Lake, specs: Iterable[TableSpec], path: Path | None = None
) -> list[CatalogEntry]:
    """Write a fresh catalog file with a view for every entry, then swap it in whole (a local
    rename, or one PUT to the lake's bucket): a reader never sees it half-written."""
    local = path or (None if lake.is_s3 else Path(lake.url(CATALOG_KEY)))
    entries = catalog_entries(lake, specs)
    if local:
        local.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=local.parent if local else None) as scratch:
        tmp = Path(scratch, CATALOG_FILE)
        # Written through the process's in-memory connection (its extensions already loaded:
        # ~0.1 s saved), attached for the time of writing.
        con = connect(lake)
        con.execute(f"ATTACH '{tmp}' AS fresh_catalog")
        try:
            con.execute("USE fresh_catalog")
            for entry in entries:
                con.execute(_view_sql(entry))
        finally:
            con.execute("USE memory")
            con.execute("DETACH fresh_catalog")
            con.close()
        if local:
            tmp.replace(local)
        else:
            lake.write(CATALOG_KEY, tmp)
    return entries


class CatalogMissing(Exception):
    pass


def open_catalog(lake: Lake, path: Path | None = None) -> duckdb.DuckDBPyConnection:
    """The catalog, read-only: a local file, or the lake's own (attached from S3)."""
    location = catalog_location(lake, path)
    missing = CatalogMissing(
        f"no catalog at {location}: is LAKEHOUSE_URI your lake (now {lake.uri})? "
        "A new lake has none until files are loaded (ecom-lakehouse ingest, or dagster dev)"
    )
    if path or not lake.is_s3:
        if not Path(location).exists():
            raise missing
        return connect(lake, location, read_only=True)
    if lake.head(CATALOG_KEY) is None:
        raise missing
    con = connect(lake)
    con.execute(f"ATTACH '{location}' AS lakehouse (READ_ONLY)")
    con.execute("USE lakehouse")
    return con
