"""The catalog analysts query: a ``<dataset>_catalog`` asset per table (a DuckDB view locally,
a Glue table in AWS), refreshed by declarative automation after the table changes, and a job
that refreshes them all."""

from collections.abc import Iterable

import dagster as dg

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core import layout
from ecom_lakehouse.core.delta import table_exists
from ecom_lakehouse.names import CATALOG_JOB, CATALOG_POOL, CATALOG_SENSOR, names_of
from ecom_lakehouse.resources.catalogs import Catalog
from ecom_lakehouse.resources.lake import LakeResource


def catalog_asset(contract: DatasetContract) -> dg.AssetsDefinition:
    ds, n = contract.name, names_of(contract)

    @dg.asset(
        key=n.catalog,
        deps=[n.table],
        group_name=n.group,
        kinds={"duckdb"},
        tags={"dataset": ds},
        pool=CATALOG_POOL,
        automation_condition=(
            dg.AutomationCondition.any_deps_updated()
            & ~dg.AutomationCondition.in_progress()
            & ~dg.AutomationCondition.any_deps_in_progress()
        ),
        description=(
            f"The {ds} table's entry in the catalog analysts query: a DuckDB view locally, "
            "a native Delta table in the Glue Data Catalog (for Athena) in AWS."
        ),
    )
    def catalog(
        context: dg.AssetExecutionContext, lake: LakeResource, catalog: Catalog
    ) -> dg.MaterializeResult:
        the_lake = lake.lake()
        if not table_exists(the_lake.url(layout.table_path(ds)), the_lake.storage_options()):
            context.log.info(f"{ds} has no Delta table yet: nothing to register")
            return dg.MaterializeResult(metadata={"registered": False})
        return dg.MaterializeResult(
            metadata={"registered": True, **catalog.register(the_lake, contract)}
        )

    return catalog


def catalog_definitions(contracts: Iterable[DatasetContract]) -> dg.Definitions:
    assets = [catalog_asset(c) for c in contracts]
    selection = dg.AssetSelection.assets(*assets)
    return dg.Definitions(
        assets=assets,
        jobs=[
            dg.define_asset_job(
                name=CATALOG_JOB,
                selection=selection,
                description="Refresh every table's catalog entry.",
            )
        ],
        sensors=[
            dg.AutomationConditionSensorDefinition(
                CATALOG_SENSOR,
                target=selection,
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=5,
                description="Refreshes a table's catalog entry after the table changes.",
            )
        ],
    )
