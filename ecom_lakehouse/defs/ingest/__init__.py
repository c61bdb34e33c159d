"""The ingest factory: one contract in, the dataset's assets and ingest job out.

Per dataset: ``<dataset>_validated`` -> ``<dataset>`` (the Delta table) ->
``<dataset>_archived``, and the ``<dataset>_ingest`` job that runs the three for what one run
takes. The assets are partitioned by landing day (UTC): a run takes the uploads its config
lists (the sensor's batch, all landed on its partition's day), or, with none listed, every
upload that landed that day wherever it is now (a backfill of the day). Each materialization
carries a ``files`` table: what happened to each file of the run (one event per asset and run,
however many files: per-file events would cost more than the files). Every attempt is also a
row of ``load_history``.
"""

import dagster as dg

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core.read.readers import NO_LIMITS, ReadLimits
from ecom_lakehouse.defs.ingest.archived import archived_asset
from ecom_lakehouse.defs.ingest.config import IngestFiles, ingest_run_config, landing_days
from ecom_lakehouse.defs.ingest.table import table_asset
from ecom_lakehouse.defs.ingest.validated import validated_asset
from ecom_lakehouse.names import names_of

__all__ = ["IngestFiles", "ingest_definitions", "ingest_run_config", "landing_days"]


def ingest_definitions(
    contract: DatasetContract,
    partitions: dg.PartitionsDefinition,
    limits: ReadLimits = NO_LIMITS,
) -> dg.Definitions:
    """The dataset's assets and its ingest job (see the module's docstring)."""
    names = names_of(contract)
    assets = [
        validated_asset(contract, names, partitions, limits),
        table_asset(contract, names, partitions),
        archived_asset(contract, names, partitions),
    ]
    selection: dg.AssetSelection = dg.AssetSelection.assets(
        names.validated, names.table, names.archived
    )
    if contract.freshness is not None:  # its freshness check is its sensor's to run, not a load's
        selection -= dg.AssetSelection.checks(names.freshness_check)
    job = dg.define_asset_job(
        name=names.ingest_job,
        selection=selection,
        description=(
            f"Validate, merge and archive a batch of landed {contract.name} files (or one)."
        ),
    )
    return dg.Definitions(assets=assets, jobs=[job])
