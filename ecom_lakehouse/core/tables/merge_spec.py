"""The MERGE, free of any engine: its SQL conditions (one definition for delta-rs and Spark
SQL) and the outcome every engine reports.

- **One row per key in the whole table.** The match is on the key alone: a key that comes
  back with another partition value moves (its old row is removed and the new one written in
  the same commit). The partition column is never part of the match.
- **Newest wins**, as Delta Live Tables' ``SEQUENCE BY``: a stored row is replaced only by a
  row that is at least as new by the contract's ``sequence_by``, then the upload's version,
  then the source file (so the result does not depend on the order files are processed in).
  Equal means the same upload delivered again (a re-process): it may replace its own rows.
- **Pruning** comes from literals the log can use: the batch's key range, so the engine skips
  every file whose key statistics lie outside it, and (delta-rs) the partitions the batch's
  keys can be in, from the files' statistics. Partition literals are only safe for a commit
  made against the snapshot they were read from: a concurrent writer could add a key under a
  partition they leave out, which a conflict check reading the same predicate would not see.

Kept free of engine imports so the Spark job ships it as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from ecom_lakehouse.contracts import SOURCE_FILE, SOURCE_VERSION, DatasetContract

SOURCE, TARGET = "s", "t"


@dataclass(frozen=True)
class MergeOutcome:
    inserted: int
    updated: int
    # rows kept back: the table (or another file of the batch) holds a newer version of the key
    stale: int
    table_version: int
    # files of the batch whose upload the table had already recorded: their rows not written
    committed_before: tuple[str, ...] = ()

    @property
    def loaded(self) -> int:
        """Rows of the batch the table now reflects (written, or superseded by newer ones)."""
        return self.inserted + self.updated + self.stale

    @property
    def already_committed(self) -> bool:
        """Nothing was written: every upload was already in the table."""
        return bool(self.committed_before) and not self.loaded


@dataclass(frozen=True)
class KeyRange:
    """The batch's smallest and largest key (of a composite key, of its first column), spelled
    into the predicate as literals."""

    low: object
    high: object


def merge_predicate(
    contract: DatasetContract,
    keys: KeyRange | None = None,
    partitions: Iterable[object] | None = None,
) -> str:
    """Match on the key (every column of a composite one); prune with the batch's range of the
    key's first column and, when given, the partition values its keys can be in (the caller
    must then commit against the snapshot it read them from)."""
    key = contract.key_columns
    predicate = " AND ".join(f"{TARGET}.{c} = {SOURCE}.{c}" for c in key)
    if keys is not None:
        low, high = sql_literal(keys.low), sql_literal(keys.high)
        predicate += f" AND {TARGET}.{key[0]} BETWEEN {low} AND {high}"
    values = sorted({sql_literal(v) for v in partitions or () if v is not None})
    if contract.partition_by and values:
        predicate += f" AND {TARGET}.{contract.partition_by} IN ({', '.join(values)})"
    return predicate


def newer_predicate(contract: DatasetContract) -> str:
    """The source row is at least as new as the target row: ``sequence_by``, then the upload's
    version, then the source file, compared in that order; NULL is older than any value."""
    order = [*contract.sequence_by, SOURCE_VERSION, SOURCE_FILE]
    last_s, last_t = f"{SOURCE}.{order[-1]}", f"{TARGET}.{order[-1]}"
    condition = f"coalesce({last_s} >= {last_t}, {last_t} IS NULL)"
    for column in reversed(order[:-1]):
        s, t = f"{SOURCE}.{column}", f"{TARGET}.{column}"
        condition = (
            f"(coalesce({s} > {t}, {s} IS NOT NULL AND {t} IS NULL)"
            f" OR (({s} IS NOT DISTINCT FROM {t}) AND {condition}))"
        )
    return condition


def sql_literal(value: object) -> str:
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def merge_statement(
    contract: DatasetContract, target: str, source: str, keys: KeyRange | None = None
) -> str:
    """The whole MERGE as Spark SQL (Delta Lake): upsert on the key, newest wins."""
    return (
        f"MERGE INTO {target} AS {TARGET} USING {source} AS {SOURCE}"
        f" ON {merge_predicate(contract, keys)}"
        f" WHEN MATCHED AND {newer_predicate(contract)} THEN UPDATE SET *"
        f" WHEN NOT MATCHED THEN INSERT *"
    )
