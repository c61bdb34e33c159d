"""The Dagster definitions, assembled from the ``defs/`` modules (``workspace.yaml`` loads this
module; nothing is built at import: Dagster calls ``defs``, the CLI calls ``build_defs``)."""

from collections.abc import Mapping

import dagster as dg

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.defs.catalog import catalog_definitions
from ecom_lakehouse.defs.ingest import ingest_definitions
from ecom_lakehouse.defs.notifications import notification_definitions
from ecom_lakehouse.defs.sensors import raw_sensor_definitions
from ecom_lakehouse.names import check_unique
from ecom_lakehouse.resources import build_resources
from ecom_lakehouse.resources.settings import SensorSettings


def build_defs(environ: Mapping[str, str] | None = None) -> dg.Definitions:
    """The definitions with resources for the environment ``environ`` describes (default: this
    process's)."""
    check_unique(CONTRACTS.values())
    ingest = [ingest_definitions(c) for c in CONTRACTS.values()]
    return dg.Definitions.merge(
        *ingest,
        raw_sensor_definitions(ingest, SensorSettings.from_env(environ)),
        catalog_definitions(CONTRACTS.values()),
        notification_definitions(ingest),
        dg.Definitions(
            resources=build_resources(environ),
            # Steps are small and sequential: one process per run, not one per step.
            executor=dg.in_process_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs()
