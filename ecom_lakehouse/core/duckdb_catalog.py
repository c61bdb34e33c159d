"""The local catalog: a DuckDB file of views over the Delta tables (and the rejected rows).

DuckDB reads Delta with its ``delta`` extension, loaded offline from the
``duckdb-extension-delta`` wheel. The catalog file is rebuilt whole and swapped in atomically,
so a reader never sees it half-written and never waits for a writer's lock.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import duckdb
from duckdb_extensions import import_extension

from ecom_lakehouse.contracts import CONTRACTS, DatasetContract
from ecom_lakehouse.core import layout
from ecom_lakehouse.core.checks import SqlError
from ecom_lakehouse.core.delta import table_exists
from ecom_lakehouse.core.storage import Lake

CATALOG_FILE = "lakehouse.duckdb"


def connect(
    lake: Lake, database: str = ":memory:", *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can read the lake's Delta tables and Parquet files."""
    if database == ":memory:":
        # Loading the extensions costs ~0.1 s: in-memory work shares one database per lake.
        cursor = _in_memory(lake).cursor()
        cursor.execute("SET TimeZone = 'UTC'")  # a session setting: each cursor needs it
        return cursor
    return _configured(duckdb.connect(database, read_only=read_only), lake)


@functools.cache
def _in_memory(lake: Lake) -> duckdb.DuckDBPyConnection:
    return _configured(duckdb.connect(), lake)


def _configured(con: duckdb.DuckDBPyConnection, lake: Lake) -> duckdb.DuckDBPyConnection:
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET TimeZone = 'UTC'")
    import_extension("delta", con=con)
    con.execute("LOAD delta")
    if lake.is_s3:
        import_extension("httpfs", con=con)
        con.execute("LOAD httpfs")
        _create_s3_secret(con, lake)
    return con


def _create_s3_secret(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    options = ["TYPE S3", "PROVIDER credential_chain"]
    if lake.credentials:
        options = [
            "TYPE S3",
            f"KEY_ID '{lake.credentials.key_id}'",
            f"SECRET '{lake.credentials.secret}'",
        ]
        if lake.credentials.session_token:
            options.append(f"SESSION_TOKEN '{lake.credentials.session_token}'")
    if lake.region:
        options.append(f"REGION '{lake.region}'")
    if lake.endpoint_url:
        endpoint = urlparse(lake.endpoint_url)
        options += [
            f"ENDPOINT '{endpoint.netloc}'",
            "URL_STYLE 'path'",
            f"USE_SSL {'false' if endpoint.scheme == 'http' else 'true'}",
        ]
    con.execute(f"CREATE OR REPLACE SECRET lake ({', '.join(options)})")


def delta_scan(lake: Lake, dataset: str) -> str:
    return f"delta_scan('{lake.url(layout.table_path(dataset))}')"


def scalar(lake: Lake, sql: str) -> int:
    """A one-number query (an asset check's) on the lake's tables."""
    con = connect(lake)
    try:
        row = con.execute(sql).fetchone()
    except duckdb.Error as exc:
        raise SqlError(str(exc).splitlines()[0]) from None
    finally:
        con.close()
    if row is None:
        raise SqlError("the query returned no row")
    return int(row[0])


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    location: str
    kind: str  # "delta" or "rejected records"


def catalog_entries(lake: Lake, contracts: Iterable[DatasetContract]) -> list[CatalogEntry]:
    """A view per existing Delta table, and per dataset that has rejected rows."""
    entries = []
    for contract in contracts:
        table = lake.url(layout.table_path(contract.name))
        if table_exists(table, lake.storage_options()):
            entries.append(CatalogEntry(contract.name, table, "delta"))
        rejects = layout.rejected_records_prefix(contract.name)
        if next(iter(lake.list(rejects)), None) is not None:
            entries.append(
                CatalogEntry(f"rejected_{contract.name}", lake.url(rejects), "rejected records")
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


def rebuild_catalog(lake: Lake, path: Path | None = None) -> list[CatalogEntry]:
    """Write a fresh catalog file with a view for every entry, then swap it in whole (a local
    rename, or one PUT to the lake's bucket): a reader never sees it half-written."""
    local = path or (None if lake.is_s3 else Path(lake.url(CATALOG_KEY)))
    entries = catalog_entries(lake, CONTRACTS.values())
    if local:
        local.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=local.parent if local else None) as scratch:
        tmp = Path(scratch, CATALOG_FILE)
        con = connect(lake, str(tmp))
        try:
            for entry in entries:
                con.execute(_view_sql(entry))
        finally:
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
        f"no catalog at {location} yet: load some files first (ecom-lakehouse ingest)"
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
