"""The Dagster definitions, assembled from the ``defs/`` modules (``workspace.yaml`` loads this
module; nothing is built at import: Dagster calls ``defs``, the CLI calls ``build_defs``)."""

from collections.abc import Mapping

import dagster as dg

from ecom_lakehouse.contracts import CONTRACTS, KPIS, LOAD_HISTORY, table_specs
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
from ecom_lakehouse.resources.settings import (
    GeneratorSettings,
    MaintenanceSettings,
    SensorSettings,
    read_limits,
)


def build_defs(environ: Mapping[str, str] | None = None) -> dg.Definitions:
    """The definitions with resources for the environment ``environ`` describes (default: this
    process's)."""
    check_unique(CONTRACTS.values(), KPIS.values())
    settings = SensorSettings.from_env(environ)
    days = landing_days(settings.first_landing_day)
    limits = read_limits(environ)
    ingest = [ingest_definitions(c, days, limits) for c in CONTRACTS.values()]
    kpis = kpi_definitions(KPIS.values())
    catalog = catalog_definitions(
        [
            *((c, names_of(c).group) for c in CONTRACTS.values()),
            *((k, kpi_names(k).group) for k in KPIS.values()),
            (LOAD_HISTORY, HISTORY_GROUP),
        ]
    )
    # catalog entries and KPI tables refresh by their automation conditions
    automated = [
        *(catalog_key(s) for s in table_specs()),
        *(kpi_names(k).table for k in KPIS.values()),
    ]
    return dg.Definitions.merge(
        *ingest,
        kpis,
        catalog,
        raw_sensor_definitions(ingest, days, settings),
        history_definitions(),
        automation_sensor_definitions(dg.AssetSelection.assets(*automated), settings),
        notification_definitions(ingest),
        generator_definitions(GeneratorSettings.from_env(environ)),
        maintenance_definitions(table_specs(), MaintenanceSettings.from_env(environ)),
        monitoring_definitions(CONTRACTS.values()),
        dg.Definitions(
            resources=build_resources(environ),
            # Steps are small and sequential: one process per run, not one per step.
            executor=dg.in_process_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs()
