"""DuckDB over the lake: connections that read its Delta tables and Parquet files (locally or
on S3), and the one-number queries the asset checks run.

DuckDB reads Delta with its ``delta`` extension, loaded offline from the
``duckdb-extension-delta`` wheel (and S3 with ``httpfs``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
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
    when done). In-memory work shares one database per lake, for a run (see ``for_run``):
    loading the extensions costs ~0.1 s, which a run pays once, not each step."""
    if database == ":memory:":
        with _LOCK:
            if lake not in _DATABASES:
                database_of_run = _configured(duckdb.connect(), lake)
                _DATABASES[lake] = _Shared(database_of_run, _RUNS.get(lake))
            cursor = _DATABASES[lake].database.cursor()
        cursor.execute("SET TimeZone = 'UTC'")  # a session setting: each cursor needs it
        return cursor
    return _configured(duckdb.connect(database, read_only=read_only), lake)


@dataclass
class _Shared:
    database: duckdb.DuckDBPyConnection
    run_id: str | None  # the run it serves (None: this process, outside any run)


_DATABASES: dict[Lake, _Shared] = {}
_RUNS: dict[Lake, str] = {}  # the run whose steps query the lake now
_LOCK = threading.Lock()


_HELD: set[Lake] = set()  # lakes whose database this process keeps across its runs


def for_run(lake: Lake, run_id: str) -> None:
    """A step of ``run_id`` is about to query the lake: the shared database is the run's. One
    left by another run (or by no run) is let go, so a database lives as long as its run in a
    run worker (a run a process) and in the tests (runs one after another); a process that
    ``holds`` the lake (the CLI, its runs one command) keeps one for all of them. Let go, not
    closed: a run still querying it in another thread keeps it open through its cursors, and
    DuckDB frees it with the last of them."""
    with _LOCK:
        if lake in _HELD:
            return
        _RUNS[lake] = run_id
        other = _DATABASES.get(lake)
        if other is not None and other.run_id != run_id:
            del _DATABASES[lake]


@contextlib.contextmanager
def held(lake: Lake) -> Iterator[None]:
    """The runs inside this block share one database (opened by the first query), closed at
    its end: a command of the CLI pays for loading the extensions once, not once a run."""
    with _LOCK:
        _HELD.add(lake)
    try:
        yield
    finally:
        with _LOCK:
            _HELD.discard(lake)
            shared = _DATABASES.pop(lake, None)
        if shared is not None:
            shared.database.close()


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
