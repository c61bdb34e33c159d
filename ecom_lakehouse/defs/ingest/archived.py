"""``<dataset>_archived``: the step that moves a run's files to ``archived/`` once their rows
are committed."""

import dagster as dg

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.pipeline import (
    archive_batch,
)
from ecom_lakehouse.core.tables.reporting import (
    FILES,
    FileValue,
)
from ecom_lakehouse.defs.ingest.config import batch_id, dataset_tags
from ecom_lakehouse.defs.ingest.files import files_table
from ecom_lakehouse.names import DatasetNames
from ecom_lakehouse.resources.lake import LakeResource


def archived_asset(
    contract: DatasetContract, names: DatasetNames, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.archived,
        deps=[names.table],
        partitions_def=partitions,
        group_name=names.group,
        tags=dataset_tags(contract),
        description=f"The raw files, moved to {layout.ARCHIVED} once their rows are committed.",
    )
    def archived(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        return archive_run(context, contract, lake.lake())

    return archived


def archive_run(
    context: dg.AssetExecutionContext, contract: DatasetContract, lake: Lake
) -> dg.MaterializeResult:
    """The archive step: the batch's files moved, each with what became of it."""
    outcomes = archive_batch(lake, contract, batch_id(context))
    if not outcomes:
        context.log.info("nothing to archive: the run's files were archived by an earlier try")
    for key, outcome in outcomes.items():
        if outcome.note:
            context.log.info(f"{key}: {outcome.note}")
    rows: list[dict[str, FileValue]] = [
        {"file": key, "status": "archived", "archived_to": o.archived_key, "moved": o.moved}
        for key, o in outcomes.items()
    ]
    return dg.MaterializeResult(
        metadata={FILES: files_table(rows), "batch_files_archived": len(rows)}
    )
