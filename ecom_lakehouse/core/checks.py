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
    key = contract.primary_key
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
            name=f"{key}_unique_and_not_null",
            description=f"Every row of {contract.name} has a {key}, and no two rows share one.",
            sql=(
                f"SELECT count(*) FILTER (WHERE {key} IS NULL)"
                f" + count({key}) - count(DISTINCT {key}) FROM {{table}}"
            ),
            tables={"table": contract.name},
            error=True,
        ),
    ]
    for fk in contract.foreign_keys:
        checks.append(
            TableCheck(
                name=f"{fk.column}_references_{fk.references}",
                description=(
                    f"Every {contract.name}.{fk.column} is a {fk.references}.{fk.referenced_column}"
                    " (a late file of the referenced dataset can resolve a failure)."
                ),
                sql=(
                    f"SELECT count(*) FROM {{table}} c WHERE c.{fk.column} IS NOT NULL"
                    f" AND NOT EXISTS (SELECT 1 FROM {{ref}} p"
                    f" WHERE p.{fk.referenced_column} = c.{fk.column})"
                ),
                tables={"table": contract.name, "ref": fk.references},
                error=False,
            )
        )
    return checks


def render(check: TableCheck, table_ref: Callable[[str], str], expected_rows: int) -> str:
    tables = {p: table_ref(ds) for p, ds in check.tables.items()}
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
