"""KPI tables, kept up to date incrementally.

A refresh recomputes only the days its inputs touched since the last refresh: each input's
change feed (Delta's Change Data Feed: the rows before and after each change) is read from the
version the KPI table last consumed, and the KPI's ``touched_dates`` SQL maps those rows to
days. The KPI's SQL then computes those days' rows (DuckDB, over the Delta tables), and one
MERGE writes them, deletes the rows of days that no longer have any, and records the input
versions it consumed as Delta application transactions in the same commit. A refresh that
crashes before its commit is simply done again; one after it finds nothing new.

Where a change feed cannot answer (the first refresh, a feed not kept that far back), every
day is recomputed: the result is the same, only slower.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction
from deltalake.exceptions import DeltaError, TableNotFoundError

from ecom_lakehouse.contracts import COMPUTED_AT, KpiCheck, KpiTable, TableSpec
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.sql import duckdb_sql
from ecom_lakehouse.core.sql.checks import CheckOutcome
from ecom_lakehouse.core.tables.delta import commit_transactions_only, retrying_conflicts
from ecom_lakehouse.core.tables.merge_spec import sql_literal

log = logging.getLogger(__name__)

# The rows a sink is told about: new or changed rows (all columns), and removed keys.
Push = Callable[[KpiTable, pa.Table, pa.Table], dict[str, object]]


def consumed_app_id(kpi: KpiTable, dataset: str) -> str:
    """The application transaction that records the version of ``dataset`` the KPI reflects."""
    return f"ecom-lakehouse/kpi/{kpi.name}/{dataset}"


@dataclass
class KpiOutcome:
    dates: list[date]  # the days recomputed
    full: bool  # every day (no change feed to go by)
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    table_version: int | None = None
    consumed: dict[str, int] = field(default_factory=dict)  # input -> version now reflected
    pushed: dict[str, object] = field(default_factory=dict)  # what the sink reported


def kpi_checks(kpi: KpiTable) -> list[KpiCheck]:
    """The KPI's own checks, and one per rate column: between 0 and 1."""
    rates = [
        KpiCheck(
            f"{column}_between_0_and_1",
            f"Every {column} is a number from 0 to 1.",
            f"SELECT count(*) FROM {{kpi}} WHERE NOT ({column} BETWEEN 0 AND 1)",
        )
        for column in kpi.rate_columns
    ]
    return [*kpi.checks, *rates]


def render_kpi_sql(sql: str, table: Callable[[str], str], dates: list[date] | None = None) -> str:
    """A KPI's SQL for an engine: each ``{table}`` as ``table`` names it there, ``{changed}``
    as the relation of changed rows, ``{dates}`` as a relation of those dates (column ``d``).
    The same text runs on DuckDB and on Athena (Trino)."""
    names = {field for _, field, _, _ in string.Formatter().parse(sql) if field}
    values: dict[str, str] = {n: table(n) for n in names - {"dates", "changed"}}
    values["changed"] = "changed"
    if dates:
        rows = ", ".join(f"({sql_literal(d)})" for d in dates)
        values["dates"] = f"(VALUES {rows}) AS days(d)"
    elif dates is not None:
        values["dates"] = "(SELECT CAST(NULL AS DATE) AS d WHERE 1 = 0) AS days"
    return sql.format(**values)


class _Sql:
    """DuckDB over the lake, with the placeholders of the KPI SQL resolved: a dataset's table
    (an empty one of the right columns while the dataset has no table yet), the KPI's own
    table, ``{changed}`` and ``{dates}``."""

    def __init__(self, lake: Lake, kpi: KpiTable, datasets: Mapping[str, TableSpec]) -> None:
        self.lake, self.kpi, self.datasets = lake, kpi, datasets
        self.con = duckdb_sql.connect(lake)

    def __enter__(self) -> _Sql:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()

    def table(self, name: str) -> str:
        spec = self.datasets.get(name) or (self.kpi if name == "kpi" else None)
        if spec is None:
            raise KeyError(f"{self.kpi.name}: the SQL names an unknown table {{{name}}}")
        uri = self.lake.url(layout.table_path(spec.name))
        if DeltaTable.is_deltatable(uri, storage_options=self.lake.storage_options()):
            return f"delta_scan('{uri}')"
        columns = ", ".join(f"CAST(NULL AS {c.sql_type}) AS {c.name}" for c in spec.table_columns)
        return f"(SELECT {columns} WHERE 1 = 0)"

    def render(self, sql: str, dates: list[date] | None = None) -> str:
        return render_kpi_sql(sql, self.table, dates)

    def query(self, sql: str, dates: list[date] | None = None) -> pa.Table:
        return self.con.execute(self.render(sql, dates)).to_arrow_table()

    def dates(self, sql: str) -> set[date]:
        return {d for d in self.query(sql).column(0).to_pylist() if d is not None}


def _table(lake: Lake, name: str) -> DeltaTable | None:
    try:
        return DeltaTable(lake.url(layout.table_path(name)), storage_options=lake.storage_options())
    except TableNotFoundError:
        return None


def _touched(
    sql: _Sql, lake: Lake, kpi: KpiTable, table: DeltaTable | None
) -> tuple[set[date] | None, dict[str, int]]:
    """The days the inputs touched since the KPI's last refresh (None: every day), and the
    input versions that covers."""
    versions: dict[str, int] = {}
    touched: set[date] = set()
    for source in kpi.inputs:
        current = _table(lake, source.dataset)
        if current is None:
            continue
        versions[source.dataset] = current.version()
        consumed = (
            table.transaction_version(consumed_app_id(kpi, source.dataset)) if table else None
        )
        if consumed is None:
            return None, versions | _versions(lake, kpi)
        if consumed >= current.version():
            continue
        try:
            changes = pa.table(
                current.load_cdf(starting_version=consumed + 1, ending_version=current.version())
            )
        except (DeltaError, pa.ArrowInvalid, OSError) as unreadable:
            # the feed does not reach back that far (versions before it was enabled, change
            # files vacuumed): every day is recomputed, which is always right, only slower
            log.info(
                f"{kpi.name}: {source.dataset}'s changes since version {consumed + 1} cannot "
                f"be read ({type(unreadable).__name__}: {str(unreadable)[:200]}); recomputing "
                "every day"
            )
            return None, versions | _versions(lake, kpi)
        sql.con.register("changed", changes)
        try:
            touched |= sql.dates(source.touched_dates)
        finally:
            sql.con.unregister("changed")
    return touched, versions


def _versions(lake: Lake, kpi: KpiTable) -> dict[str, int]:
    return {
        s.dataset: t.version() for s in kpi.inputs if (t := _table(lake, s.dataset)) is not None
    }


def refresh(
    lake: Lake,
    kpi: KpiTable,
    datasets: Mapping[str, TableSpec],
    *,
    full: bool = False,
    push: Push | None = None,
) -> KpiOutcome:
    """Recompute the KPI rows of the days the inputs touched (every day with ``full``), tell
    ``push`` what changed, then write them; done again from a fresh look when another
    refresh committed meanwhile. ``datasets``: the tables its SQL names, by name."""
    return retrying_conflicts(
        lambda: _refresh_once(lake, kpi, datasets, full, push),
        kpi.name,
        "nothing was committed: the next refresh recomputes the same days",
    )


def _refresh_once(
    lake: Lake, kpi: KpiTable, datasets: Mapping[str, TableSpec], full: bool, push: Push | None
) -> KpiOutcome:
    table = _table(lake, kpi.name)
    with _Sql(lake, kpi, datasets) as sql:
        outcome = _plan(sql, lake, kpi, table, full)
        if not outcome.dates:
            if table is not None and any(
                table.transaction_version(consumed_app_id(kpi, dataset)) != version
                for dataset, version in outcome.consumed.items()
            ):
                outcome.table_version = _record_only(table, kpi, outcome.consumed)
            return outcome
        rows = _with_computed_at(kpi, sql.query(kpi.sql, outcome.dates))
        stored = f"SELECT * FROM {{kpi}} WHERE {kpi.date_column} IN (SELECT d FROM {{dates}})"
        before = sql.query(stored, outcome.dates) if table else rows.schema.empty_table()
    upserts, deletes = _diff(kpi, before, rows)
    if push is not None:
        outcome.pushed = push(kpi, upserts, deletes)  # before the commit: a crash pushes again
    _write(lake, kpi, rows, outcome)
    return outcome


def _plan(sql: _Sql, lake: Lake, kpi: KpiTable, table: DeltaTable | None, full: bool) -> KpiOutcome:
    """The days to recompute and the input versions that covers."""
    touched, versions = (None, _versions(lake, kpi)) if full else _touched(sql, lake, kpi, table)
    if touched is not None:
        return KpiOutcome(sorted(touched), full=False, consumed=versions)
    every = sql.dates(kpi.dates)
    if table is not None:  # and the days the KPI holds that may have lost their rows
        every |= sql.dates(f"SELECT DISTINCT {kpi.date_column} FROM {{kpi}}")
    return KpiOutcome(sorted(every), full=True, consumed=versions)


def _with_computed_at(kpi: KpiTable, rows: pa.Table) -> pa.Table:
    rows = rows.select(list(kpi.column_names)).cast(
        pa.schema([c.arrow_field() for c in kpi.columns])
    )
    now = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    return rows.append_column(COMPUTED_AT, pa.repeat(now, rows.num_rows)).cast(kpi.table_schema)


def _diff(kpi: KpiTable, before: pa.Table, after: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Rows of ``after`` that are new or differ from ``before``; keys of ``before`` gone."""
    columns = list(kpi.column_names)
    old = {tuple(r[c] for c in kpi.key): r for r in before.select(columns).to_pylist()}
    new = after.select(columns).to_pylist()
    changed = [i for i, r in enumerate(new) if old.get(tuple(r[c] for c in kpi.key)) != r]
    kept = {tuple(r[c] for c in kpi.key) for r in new}
    gone = [r for k, r in old.items() if k not in kept]
    upserts = after.select(columns).take(pa.array(changed, pa.int64()))
    deletes = pa.Table.from_pylist(
        [{c: r[c] for c in kpi.key} for r in gone], schema=after.select(list(kpi.key)).schema
    )
    return upserts, deletes


def _commit(kpi: KpiTable, versions: dict[str, int]) -> CommitProperties:
    return CommitProperties(
        app_transactions=[Transaction(consumed_app_id(kpi, d), v) for d, v in versions.items()]
    )


def _record_only(table: DeltaTable, kpi: KpiTable, versions: dict[str, int]) -> int:
    """Record the input versions consumed, when they changed no day (a commit of no data)."""
    return commit_transactions_only(table, _commit(kpi, versions))


def _write(lake: Lake, kpi: KpiTable, rows: pa.Table, outcome: KpiOutcome) -> None:
    dates, versions = outcome.dates, outcome.consumed
    uri, options = lake.url(layout.table_path(kpi.name)), lake.storage_options()
    table = _table(lake, kpi.name) or DeltaTable.create(
        uri,
        schema=kpi.table_schema,
        name=kpi.name,
        description=kpi.description,
        mode="ignore",
        storage_options=options,
    )
    in_dates = f"t.{kpi.date_column} IN ({', '.join(sql_literal(d) for d in dates)})"
    on = " AND ".join(f"t.{k} = s.{k}" for k in kpi.key)
    differs = " OR ".join(f"(t.{c} IS DISTINCT FROM s.{c})" for c in kpi.value_columns)
    metrics = (
        table.merge(
            rows,
            predicate=f"{on} AND {in_dates}",
            source_alias="s",
            target_alias="t",
            commit_properties=_commit(kpi, versions),
        )
        .when_matched_update_all(predicate=differs or None)
        .when_not_matched_insert_all()
        .when_not_matched_by_source_delete(predicate=in_dates)
        .execute()
    )
    outcome.inserted = metrics["num_target_rows_inserted"]
    outcome.updated = metrics["num_target_rows_updated"]
    outcome.deleted = metrics["num_target_rows_deleted"]
    table = DeltaTable(uri, storage_options=options)
    if not (outcome.inserted or outcome.updated or outcome.deleted):
        # nothing to write: record the versions consumed all the same
        outcome.table_version = _record_only(table, kpi, versions)
    else:
        outcome.table_version = table.version()


def run_checks(
    lake: Lake, kpi: KpiTable, datasets: Mapping[str, TableSpec], dates: list[date]
) -> list[CheckOutcome]:
    """The KPI's checks, over the days just recomputed."""
    outcomes = []
    with _Sql(lake, kpi, datasets) as sql:
        for check in kpi_checks(kpi):
            metadata: dict[str, int | str]
            try:
                offending = int(sql.query(check.sql, dates).column(0)[0].as_py())
                passed, metadata = offending == 0, {"offending_rows": offending}
            except duckdb.Error as exc:  # a query that fails fails its check
                passed, metadata = False, {"error": str(exc).splitlines()[0]}
            outcomes.append(CheckOutcome(check.name, passed, "ERROR", metadata))
    return outcomes
