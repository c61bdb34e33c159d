"""Where a batch's keys are in a Delta table, so the MERGE reads only the partitions that can
hold them while still matching on the key alone (a key that changed partition is found too).

The log answers first: a numeric key's min/max statistics per data file rule out most files
without reading anything. When they cannot (keys spread over many files), the key column of the
files left is read, and only that column: first in the batch's own partitions (a key found
there is nowhere else, since the table holds one row per key), then, for the keys not found
there, in the other partitions' files that may hold them. A composite key is pruned by its
first column's statistics and found by all its columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.sql import duckdb_sql


@dataclass(frozen=True)
class KeyLocations:
    absent: bool  # no key of the batch is in the table: the load is an append
    # The partitions holding the batch's keys, and the batch's own: the MERGE need read no
    # other. None: every partition (not partitioned, or nothing to gain).
    partitions: list[object] | None


EVERYWHERE = KeyLocations(absent=False, partitions=None)
Keys: TypeAlias = pa.ChunkedArray | pa.Array


def _keys(contract: DatasetContract, rows: pa.Table) -> pa.Table:
    """The key columns of ``rows`` as ``k0, k1, ...`` (what the queries below join on)."""
    return pa.table({f"k{i}": rows.column(c) for i, c in enumerate(contract.key_columns)})


def locate_keys(
    lake: Lake, table: DeltaTable, contract: DatasetContract, batch: pa.Table
) -> KeyLocations:
    files = pa.table(table.get_add_actions(flatten=True))
    if files.num_rows == 0:
        return KeyLocations(absent=True, partitions=[])
    keys, first = _keys(contract, batch), contract.key_columns[0]
    candidates = files.filter(_may_hold(files, first, keys.column("k0")))
    if candidates.num_rows == 0:
        return KeyLocations(absent=True, partitions=[])
    if not contract.partition_by:
        return EVERYWHERE
    part = f"partition.{contract.partition_by}"
    own = pc.unique(batch.column(contract.partition_by)).to_pylist()
    held = pc.unique(files.column(part)).to_pylist()
    if None in own or None in held:
        return EVERYWHERE  # the NULL partition cannot be named by a literal
    in_own = pc.is_in(
        candidates.column(part), value_set=pa.array(own, files.schema.field(part).type)
    )
    elsewhere = candidates.filter(pc.invert(in_own))
    if elsewhere.num_rows:
        # Keys found in the batch's own partitions are nowhere else; the others are looked
        # for in the files elsewhere that may hold them.
        found = _present(lake, contract, candidates.filter(in_own), keys)
        missing = keys.join(found, list(keys.column_names), join_type="left anti")
        elsewhere = elsewhere.filter(_may_hold(elsewhere, first, missing.column("k0")))
        hits = _files_holding(lake, contract, elsewhere, missing)
        holding = elsewhere.filter(pc.is_in(elsewhere.column("path"), value_set=hits))
        own += pc.unique(holding.column(part)).to_pylist()
    partitions = sorted(set(own), key=str)
    return KeyLocations(False, partitions if len(partitions) < len(held) else None)


def _may_hold(files: pa.Table, key: str, keys: Keys) -> pa.Array:
    """Per data file, whether its statistics allow it to hold one of ``keys`` (numeric keys;
    any file may hold any other key)."""
    low, high = f"min.{key}", f"max.{key}"
    everywhere = pa.array(np.ones(files.num_rows, dtype=bool))
    if not pa.types.is_integer(keys.type) or low not in files.column_names:
        return everywhere
    lows, highs = files.column(low), files.column(high)
    if lows.null_count or highs.null_count or keys.null_count:
        return everywhere  # a file without statistics (or a NULL key) could hold anything
    if len(keys) == 0:
        return pa.array(np.zeros(files.num_rows, dtype=bool))
    ordered = np.sort(keys.to_numpy())
    first = np.searchsorted(ordered, lows.to_numpy(), side="left")  # first key >= a file's min
    nearest = ordered[np.minimum(first, len(ordered) - 1)]
    return pa.array((first < len(ordered)) & (nearest <= highs.to_numpy()))


def _uris(lake: Lake, contract: DatasetContract, files: pa.Table) -> list[str]:
    """The data files' locations as DuckDB reads them (the log's paths are relative, encoded)."""
    root = lake.url(layout.table_path(contract.name))
    return [f"{root}/{unquote(path)}" for path in files.column("path").to_pylist()]


def _query(lake: Lake, sql: str, files: Sequence[str], keys: pa.Table) -> pa.Table:
    con = duckdb_sql.connect(lake)
    try:
        con.register("batch_keys", keys)
        return con.execute(sql, {"files": list(files)}).to_arrow_table()
    finally:
        con.close()


def _on(contract: DatasetContract) -> str:
    return " AND ".join(f'f."{c}" = b.k{i}' for i, c in enumerate(contract.key_columns))


def _present(lake: Lake, contract: DatasetContract, files: pa.Table, keys: pa.Table) -> pa.Table:
    """The keys of ``keys`` that ``files`` hold (their key columns alone are read)."""
    if files.num_rows == 0:
        return keys.slice(0, 0)
    columns = ", ".join(f'f."{c}" AS k{i}' for i, c in enumerate(contract.key_columns))
    sql = (
        f"SELECT DISTINCT {columns} FROM read_parquet($files) f"
        f" SEMI JOIN batch_keys b ON {_on(contract)}"
    )
    found = _query(lake, sql, _uris(lake, contract, files), keys)
    return found.cast(keys.schema)


def _files_holding(
    lake: Lake, contract: DatasetContract, files: pa.Table, keys: pa.Table
) -> pa.Array:
    """The paths (as the log names them) of ``files`` that hold one of ``keys``."""
    if files.num_rows == 0 or keys.num_rows == 0:
        return pa.array([], pa.string())
    uris = _uris(lake, contract, files)
    sql = (
        f"SELECT DISTINCT f.filename FROM read_parquet($files, filename = true) f"
        f" SEMI JOIN batch_keys b ON {_on(contract)}"
    )
    held = set(_query(lake, sql, uris, keys).column("filename").to_pylist())
    paths = files.column("path").to_pylist()
    return pa.array([p for p, uri in zip(paths, uris, strict=True) if uri in held], pa.string())
