"""Asset checks on the Delta tables, as SQL, one definition for every SQL engine.

Each check is a query returning one row: the number of offending rows. The table names in it
are placeholders (``{table}``, ``{ref}``) that the engine resolves: ``delta_scan(...)`` in
DuckDB locally, ``"database"."table"`` in Athena. ``{expected_rows}`` is the row count the
load expects (rows before the merge plus rows it inserted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ecom_lakehouse.contracts import DatasetContract


@dataclass(frozen=True)
class TableCheck:
    name: str
    description: str
    sql: str  # one row, one column: offending rows
    tables: dict[str, str]  # placeholder -> dataset
    error: bool  # severity ERROR when it fails (else WARN)


def table_checks(contract: DatasetContract) -> list[TableCheck]:
    key = contract.key_columns
    checks = [
        TableCheck(
            name="row_count_reconciles",
            description=(
                "The table's row count, read by the SQL engine, equals the rows it had before "
                "this file's merge plus the rows the merge reported inserting."
            ),
            sql="SELECT abs(count(*) - {expected_rows}) FROM {table}",
            tables={"table": contract.name},
            error=True,
        ),
        TableCheck(
            name=f"{'_'.join(key)}_unique_and_not_null",
            description=(
                f"Every row of {contract.name} has a {contract.key_label}, and no two rows "
                "share one."
            ),
            sql=unique_key_sql(key),
            tables={"table": contract.name},
            error=True,
        ),
    ]
    for fk in contract.foreign_keys:
        own, theirs = fk.column_names, fk.referenced_names
        label = ", ".join(own) if len(own) == 1 else f"({', '.join(own)})"
        target = ", ".join(theirs) if len(theirs) == 1 else f"({', '.join(theirs)})"
        matches = " AND ".join(f"p.{t} = c.{o}" for o, t in zip(own, theirs, strict=True))
        checks.append(
            TableCheck(
                name=fk.name,
                description=(
                    f"Every {contract.name}.{label} is a {fk.references}.{target}"
                    " (a late file of the referenced dataset can resolve a failure)."
                ),
                sql=(
                    "SELECT count(*) FROM {table} c WHERE "
                    + " AND ".join(f"c.{o} IS NOT NULL" for o in own)
                    + f" AND NOT EXISTS (SELECT 1 FROM {{ref}} p WHERE {matches})"
                ),
                tables={"table": contract.name, "ref": fk.references},
                error=False,
            )
        )
    return checks


def unique_key_sql(key: tuple[str, ...]) -> str:
    """Rows with a NULL in the key, plus rows beyond the first of each key (one scan for a
    one-column key; a composite key counts its distinct tuples in a subquery, which DuckDB and
    Athena/Trino both read)."""
    if len(key) == 1:
        (k,) = key
        return (
            f"SELECT count(*) FILTER (WHERE {k} IS NULL) + count({k}) - count(DISTINCT {k})"
            " FROM {table}"
        )
    any_null = " OR ".join(f"{c} IS NULL" for c in key)
    return (
        f"SELECT count(*) FILTER (WHERE {any_null})"
        f" + count(*) FILTER (WHERE NOT ({any_null}))"
        f" - (SELECT count(*) FROM (SELECT DISTINCT {', '.join(key)} FROM {{table}}"
        f" WHERE NOT ({any_null})) k) FROM {{table}}"
    )


def render(check: TableCheck, table_ref: Callable[[str], str], expected_rows: int) -> str:
    tables = {p: table_ref(dataset) for p, dataset in check.tables.items()}
    return check.sql.format(expected_rows=expected_rows, **tables)


class SqlError(Exception):
    """A check's SQL failed on its engine (e.g. a referenced table does not exist yet)."""


@dataclass(frozen=True)
class CheckOutcome:
    """A check's result, as every engine reports it (to Dagster directly, or through Pipes)."""

    name: str
    passed: bool
    severity: Literal["ERROR", "WARN"]  # Dagster's names
    metadata: dict[str, int | str] = field(default_factory=dict)


def evaluate_checks(
    checks: list[TableCheck],
    scalar: Callable[[str], int],
    table_ref: Callable[[str], str],
    expected_rows: int,
) -> list[CheckOutcome]:
    """Run each check's SQL with ``scalar`` (an engine's one-number query); a query that fails
    fails its check, with the error as metadata."""
    outcomes = []
    for check in checks:
        metadata: dict[str, int | str]
        try:
            offending = scalar(render(check, table_ref, expected_rows))
            passed, metadata = offending == 0, {"offending_rows": offending}
        except SqlError as exc:
            passed, metadata = False, {"error": str(exc)}
        outcomes.append(
            CheckOutcome(check.name, passed, "ERROR" if check.error else "WARN", metadata)
        )
    return outcomes
