"""The MERGE, free of any engine: its SQL conditions (one definition for delta-rs and Spark
SQL), the upload's transaction id and the outcome every engine reports.

Kept free of engine imports so the Spark job ships it as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from ecom_lakehouse.contracts import DatasetContract

SOURCE, TARGET = "s", "t"


@dataclass(frozen=True)
class MergeOutcome:
    inserted: int
    updated: int
    unchanged: int
    table_version: int
    already_committed: bool  # this upload's txn was in the table: nothing was written

    @property
    def loaded(self) -> int:
        return self.inserted + self.updated + self.unchanged


def merge_predicate(contract: DatasetContract, partition_values: Iterable[object] = ()) -> str:
    """Match on the key, and on the partition column: a key's date never changes (an order is
    placed once). The batch's partition values are spelled out as literals, which lets the
    engine skip every other partition's files without scanning them (0.03 s instead of 0.6 s
    into a 2M-row table in benchmarks/incremental.py)."""
    keys = [contract.primary_key]
    if contract.partition_by:
        keys.append(contract.partition_by)
    predicate = " AND ".join(f"{TARGET}.{k} = {SOURCE}.{k}" for k in keys)
    values = sorted((v for v in partition_values if v is not None), key=sql_literal)
    if contract.partition_by and values:
        literals = ", ".join(sql_literal(v) for v in values)
        predicate += f" AND {TARGET}.{contract.partition_by} IN ({literals})"
    return predicate


def sql_literal(value: object) -> str:
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def changed_predicate(contract: DatasetContract) -> str:
    """Only rows whose values differ are rewritten: re-loading a file changes nothing."""
    return " OR ".join(
        f"({TARGET}.{c} IS DISTINCT FROM {SOURCE}.{c})" for c in contract.value_columns
    )


def merge_statement(
    contract: DatasetContract, target: str, source: str, partition_values: Iterable[object] = ()
) -> str:
    """The whole MERGE as Spark SQL (Delta Lake): upsert on the key, rewriting changed rows only."""
    return (
        f"MERGE INTO {target} AS {TARGET} USING {source} AS {SOURCE}"
        f" ON {merge_predicate(contract, partition_values)}"
        f" WHEN MATCHED AND ({changed_predicate(contract)}) THEN UPDATE SET *"
        f" WHEN NOT MATCHED THEN INSERT *"
    )
