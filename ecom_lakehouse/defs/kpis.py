"""KPI tables as assets: each refreshed by declarative automation when a table it is computed
from changes (only the days the change touched), with its checks, its rows pushed to the KPI
sink (DynamoDB in AWS)."""

from collections.abc import Iterable, Mapping

import dagster as dg

from ecom_lakehouse.contracts import KpiTable, TableSpec
from ecom_lakehouse.core.kpis.refresh import kpi_checks, refresh, run_checks
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.sql import duckdb_sql
from ecom_lakehouse.defs.automation import REFRESH_ON_UPDATE
from ecom_lakehouse.defs.schema import column_schema
from ecom_lakehouse.names import KPI_JOB, kpi_names, names_of
from ecom_lakehouse.resources.kpi_sinks import KpiSink
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.merge_engines import check_result


class KpiRefresh(dg.Config):
    full_refresh: bool = False  # every day, and every row pushed again (a sink to resync)


def column_lineage(kpi: KpiTable) -> dg.TableColumnLineage:
    """Which dataset columns each KPI column is computed from (the contract's ``lineage``)."""
    return dg.TableColumnLineage(
        deps_by_column={
            column.name: [
                dg.TableColumnDep(asset_key=names_of(dataset).table, column_name=source)
                for dataset, _, source in (ref.partition(".") for ref in column.lineage)
            ]
            for column in kpi.columns
            if column.lineage
        }
    )


def kpi_asset(kpi: KpiTable, datasets: Mapping[str, TableSpec]) -> dg.AssetsDefinition:
    """A KPI table, computed from ``datasets`` (the tables its SQL names, by name)."""
    names = kpi_names(kpi)
    checks = kpi_checks(kpi)

    @dg.asset(
        key=names.table,
        deps=[names_of(source.dataset).table for source in kpi.inputs],
        group_name=names.group,
        kinds={"deltalake", "duckdb"},
        pool=names.pool,
        automation_condition=REFRESH_ON_UPDATE,
        description=(
            f"{kpi.description} Delta table at {layout.table_path(kpi.name)}, one row per "
            f"{', '.join(kpi.key)}; only the days a change touched are recomputed."
        ),
        metadata={
            "dagster/column_schema": column_schema(kpi.table_columns, kpi.key),
            "dagster/column_lineage": column_lineage(kpi),
            "dagster/table_name": kpi.name,
        },
        check_specs=[
            dg.AssetCheckSpec(check.name, asset=names.table, description=check.description)
            for check in checks
        ],
    )
    def kpi_table(
        context: dg.AssetExecutionContext,
        config: KpiRefresh,
        lake: LakeResource,
        kpi_sink: KpiSink,
    ) -> dg.MaterializeResult:
        duckdb_sql.for_run(lake.lake(), context.run.run_id)
        return refresh_run(context, kpi, datasets, lake.lake(), kpi_sink, full=config.full_refresh)

    return kpi_table


def refresh_run(
    context: dg.AssetExecutionContext,
    kpi: KpiTable,
    datasets: Mapping[str, TableSpec],
    kpi_lake: Lake,
    kpi_sink: KpiSink,
    *,
    full: bool,
) -> dg.MaterializeResult:
    """A KPI table's step: the days its inputs' changes touched recomputed, pushed, checked."""
    outcome = refresh(kpi_lake, kpi, datasets, full=full, push=kpi_sink.push)
    shown = ", ".join(d.isoformat() for d in outcome.dates[:10])
    more = f" and {len(outcome.dates) - 10} more" if len(outcome.dates) > 10 else ""
    context.log.info(
        f"{kpi.name}: {len(outcome.dates)} day(s) recomputed"
        f"{' (every day)' if outcome.full else ''}: {shown}{more}"
    )
    metadata: dict[str, dg.RawMetadataValue] = {
        "days_recomputed": len(outcome.dates),
        "every_day": outcome.full,
        "rows_inserted": outcome.inserted,
        "rows_updated": outcome.updated,
        "rows_deleted": outcome.deleted,
        "input_versions": dg.MetadataValue.json(outcome.consumed),
        "dagster/uri": kpi_lake.url(layout.table_path(kpi.name)),
        **{k: v for k, v in outcome.pushed.items() if isinstance(v, (int, str))},
    }
    if outcome.table_version is not None:
        metadata["table_version"] = outcome.table_version
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[check_result(c) for c in run_checks(kpi_lake, kpi, datasets, outcome.dates)],
    )


def kpi_definitions(kpis: Iterable[KpiTable], datasets: Mapping[str, TableSpec]) -> dg.Definitions:
    assets = [kpi_asset(kpi, datasets) for kpi in kpis]
    job = dg.define_asset_job(
        KPI_JOB,
        selection=dg.AssetSelection.assets(*assets),
        description="Refresh the KPI tables (the days their inputs changed).",
    )
    return dg.Definitions(assets=assets, jobs=[job])
