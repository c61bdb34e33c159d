"""The Dagster definitions, assembled from the ``defs/`` modules (``workspace.yaml`` loads this
module; nothing is built at import: Dagster calls ``defs``, the CLI calls ``build_defs``)."""

from collections.abc import Mapping

import dagster as dg

from ecom_lakehouse.contracts import CONTRACTS, KPIS, LOAD_HISTORY, DatasetContract, TableSpec
from ecom_lakehouse.defs.catalog import catalog_definitions
from ecom_lakehouse.defs.history import history_definitions
from ecom_lakehouse.defs.ingest import ingest_definitions, landing_days
from ecom_lakehouse.defs.kpis import kpi_definitions
from ecom_lakehouse.defs.maintenance import maintenance_definitions
from ecom_lakehouse.defs.monitoring import monitoring_definitions
from ecom_lakehouse.defs.notifications import notification_definitions
from ecom_lakehouse.defs.sensors import automation_sensor_definitions, raw_sensor_definitions
from ecom_lakehouse.defs.stream import generator_definitions
from ecom_lakehouse.names import HISTORY_GROUP, catalog_key, check_unique, kpi_names, names_of
from ecom_lakehouse.resources import build_resources
from ecom_lakehouse.resources.settings import Settings


def build_defs(
    environ: Mapping[str, str] | None = None,
    contracts: Mapping[str, DatasetContract] | None = None,
) -> dg.Definitions:
    """The definitions with resources for the environment ``environ`` describes (default: this
    process's, read here once), for the datasets ``contracts`` declares (default: every
    registered family's, in load order)."""
    settings = Settings.from_env(environ)
    datasets = dict(CONTRACTS if contracts is None else contracts)
    check_unique(datasets.values(), KPIS.values())
    tables: list[TableSpec] = [*datasets.values(), *KPIS.values(), LOAD_HISTORY]
    days = landing_days(settings.sensor.first_landing_day)
    ingest = [ingest_definitions(c, days, settings.limits) for c in datasets.values()]
    catalog = catalog_definitions(
        [
            *((c, names_of(c).group) for c in datasets.values()),
            *((k, kpi_names(k).group) for k in KPIS.values()),
            (LOAD_HISTORY, HISTORY_GROUP),
        ]
    )
    # catalog entries and KPI tables refresh by their automation conditions
    automated = [
        *(catalog_key(s) for s in tables),
        *(kpi_names(k).table for k in KPIS.values()),
    ]
    return dg.Definitions.merge(
        *ingest,
        kpi_definitions(KPIS.values(), datasets),
        catalog,
        raw_sensor_definitions(list(datasets.values()), ingest, days, settings.sensor),
        history_definitions(),
        automation_sensor_definitions(dg.AssetSelection.assets(*automated), settings.sensor),
        notification_definitions(ingest),
        generator_definitions(settings.generator),
        maintenance_definitions(tables, settings.maintenance),
        monitoring_definitions(datasets.values()),
        dg.Definitions(
            resources=build_resources(settings),
            # Steps are small and sequential: one process per run, not one per step.
            executor=dg.in_process_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs()
