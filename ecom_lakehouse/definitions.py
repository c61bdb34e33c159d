"""The Dagster definitions: every dataset's assets from its contract, the sensors, resources."""

import os
from collections.abc import Mapping

import dagster as dg

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.defs.ingest import build_dataset_assets
from ecom_lakehouse.defs.notifications import build_notification_sensors
from ecom_lakehouse.defs.sensors import build_raw_sensor
from ecom_lakehouse.resources import build_resources

DATASETS = {name: build_dataset_assets(contract) for name, contract in CONTRACTS.items()}
CATALOG_KEYS = [d.catalog_key for d in DATASETS.values()]

catalog_job = dg.define_asset_job(
    name="catalog_refresh",
    selection=dg.AssetSelection.assets(*CATALOG_KEYS),
    description="Refresh every table's catalog entry.",
)

catalog_automation = dg.AutomationConditionSensorDefinition(
    "catalog_automation_sensor",
    target=dg.AssetSelection.assets(*CATALOG_KEYS),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=5,
    description="Refreshes a table's catalog entry after the table changes.",
)

raw_files_sensor = build_raw_sensor(
    [d.ingest_job for d in DATASETS.values()],
    {name: d.partitions for name, d in DATASETS.items()},
)


notification_sensors = build_notification_sensors([d.ingest_job for d in DATASETS.values()])


def build_defs(environ: Mapping[str, str] = os.environ) -> dg.Definitions:
    """The definitions with resources for the environment ``environ`` describes."""
    return dg.Definitions(
        assets=[asset for d in DATASETS.values() for asset in d.assets],
        jobs=[*(d.ingest_job for d in DATASETS.values()), catalog_job],
        sensors=[raw_files_sensor, catalog_automation, *notification_sensors],
        resources=build_resources(environ),
        # Steps are small and sequential: one process per run, not one per step.
        executor=dg.in_process_executor,
    )


defs = build_defs()
