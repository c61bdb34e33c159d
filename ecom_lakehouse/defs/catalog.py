"""The catalog analysts query: a ``<table>_catalog`` asset per table, a dataset's or a KPI's
(a DuckDB view locally, a Glue table in AWS), refreshed by declarative automation after the
table changes, and a job that refreshes them all."""

from collections.abc import Iterable, Sequence

import dagster as dg

from ecom_lakehouse.contracts import TableSpec
from ecom_lakehouse.core.sql import duckdb_sql
from ecom_lakehouse.core.tables.delta import lake_has_table
from ecom_lakehouse.defs.automation import REFRESH_ON_UPDATE
from ecom_lakehouse.names import CATALOG_JOB, CATALOG_POOL, catalog_key, table_key
from ecom_lakehouse.resources.catalogs import Catalog
from ecom_lakehouse.resources.lake import LakeResource


def catalog_asset(spec: TableSpec, group: str, every: Sequence[TableSpec]) -> dg.AssetsDefinition:
    """``<table>_catalog``: the table's entry, refreshed after the table changes."""

    @dg.asset(
        key=catalog_key(spec),
        deps=[table_key(spec)],
        group_name=group,
        kinds={"duckdb"},
        tags={"table": spec.name},
        pool=CATALOG_POOL,
        automation_condition=REFRESH_ON_UPDATE,
        description=(
            f"The {spec.name} table's entry in the catalog analysts query: a DuckDB view "
            "locally, a native Delta table in the Glue Data Catalog (for Athena) in AWS."
        ),
    )
    def catalog(
        context: dg.AssetExecutionContext, lake: LakeResource, catalog: Catalog
    ) -> dg.MaterializeResult:
        table_lake = lake.lake()
        if not lake_has_table(table_lake, spec.name):
            context.log.info(f"{spec.name} has no Delta table yet: nothing to register")
            return dg.MaterializeResult(metadata={"registered": False})
        duckdb_sql.for_run(table_lake, context.run.run_id)
        registered = catalog.register(table_lake, spec, every)
        return dg.MaterializeResult(metadata={"registered": True, **registered})

    return catalog


def catalog_definitions(specs: Iterable[tuple[TableSpec, str]]) -> dg.Definitions:
    """A catalog entry per (table, its group), and the job that refreshes them all."""
    every = [spec for spec, _ in specs]
    assets = [catalog_asset(spec, group, every) for spec, group in specs]
    return dg.Definitions(
        assets=assets,
        jobs=[
            dg.define_asset_job(
                name=CATALOG_JOB,
                selection=dg.AssetSelection.assets(*assets),
                description="Refresh every table's catalog entry.",
            )
        ],
    )
