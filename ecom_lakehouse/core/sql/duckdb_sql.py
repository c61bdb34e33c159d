"""DuckDB over the lake: connections that read its Delta tables and Parquet files (locally or
on S3), and the one-number queries the asset checks run.

DuckDB reads Delta with its ``delta`` extension, loaded offline from the
``duckdb-extension-delta`` wheel (and S3 with ``httpfs``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from urllib.parse import urlparse

import duckdb
from duckdb_extensions import import_extension

from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.sql.checks import SqlError


def connect(
    lake: Lake, database: str = ":memory:", *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can read the lake's Delta tables and Parquet files (close it
    when done). In-memory work shares one database per lake until ``release``: loading the
    extensions costs ~0.1 s, which a step pays once (see ``scoped``)."""
    if database == ":memory:":
        with _LOCK:
            if lake not in _DATABASES:
                _DATABASES[lake] = _configured(duckdb.connect(), lake)
            cursor = _DATABASES[lake].cursor()
        cursor.execute("SET TimeZone = 'UTC'")  # a session setting: each cursor needs it
        return cursor
    return _configured(duckdb.connect(database, read_only=read_only), lake)


_DATABASES: dict[Lake, duckdb.DuckDBPyConnection] = {}
_LOCK = threading.Lock()


@contextlib.contextmanager
def scoped(lake: Lake) -> Iterator[None]:
    """The lake's shared in-memory database lives until the end of this block (a step's work:
    the steps that query the lake with DuckDB open one, and close it when they end)."""
    try:
        yield
    finally:
        with _LOCK:
            database = _DATABASES.pop(lake, None)
        if database is not None:
            database.close()


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
