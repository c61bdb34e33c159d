"""``<dataset>_validated``: the step that reads and checks a run's files."""

from collections import Counter

import dagster as dg

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.pipeline import (
    Delivery,
    not_loaded,
    validate_batch,
)
from ecom_lakehouse.core.read.readers import ReadLimits
from ecom_lakehouse.core.tables import history
from ecom_lakehouse.core.tables.reporting import (
    FILES,
)
from ecom_lakehouse.defs.history import record_history
from ecom_lakehouse.defs.ingest.config import IngestFiles, batch_id, dataset_tags, run_files
from ecom_lakehouse.defs.ingest.files import file_validation, files_table, log_file_outcomes
from ecom_lakehouse.names import DatasetNames
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.metrics import MetricsSink


def validate_run(
    context: dg.AssetExecutionContext,
    contract: DatasetContract,
    config: IngestFiles,
    lake: Lake,
    metrics: MetricsSink,
    *,
    limits: ReadLimits,
) -> dg.MaterializeResult:
    """The validated step: the run's files read and checked, what was not loaded recorded."""
    files = run_files(context, config, lake, contract)
    context.log.info(f"{len(files)} file(s): {', '.join(files[:20])}")
    # a re-execution takes its files as the run it retries did: one delivery, applied once
    delivery = Delivery(config.etags, retry=context.run.root_run_id is not None)
    batch = validate_batch(lake, contract, files, batch_id(context), delivery, limits=limits)
    attempts = not_loaded(contract, batch.files, delivery, context.run.run_id)
    record_history(context, "the files not loaded", lambda: history.record(lake, attempts))
    rows = [file_validation(file) for file in batch.files]
    statuses = Counter(str(row["status"]) for row in rows)
    log_file_outcomes(context.log, rows)
    figures = {
        "batch_files": len(rows),
        "batch_files_validated": statuses["validated"],
        "batch_files_rejected": statuses["rejected"],
        "batch_files_skipped": statuses["skipped"],
        "rows_read": sum(int(row.get("rows_read") or 0) for row in rows),
        "rows_rejected": sum(int(row.get("rows_rejected") or 0) for row in rows),
    }
    metrics.publish(figures, contract.name)
    return dg.MaterializeResult(
        metadata={
            FILES: files_table(rows),
            **figures,
            "dagster/row_count": sum(int(row.get("rows_valid") or 0) for row in rows),
            "validated_path": batch.key,
        }
    )


def validated_asset(
    contract: DatasetContract,
    names: DatasetNames,
    partitions: dg.PartitionsDefinition,
    limits: ReadLimits,
) -> dg.AssetsDefinition:
    """``<dataset>_validated``: the run's files read and checked (``validate_run``)."""
    dataset = contract.name

    @dg.asset(
        key=names.validated,
        partitions_def=partitions,
        group_name=names.group,
        tags=dataset_tags(contract),
        kinds={"parquet"},
        description=(
            f"Landed {dataset} files, read and checked against the contract together: good rows "
            f"as typed Parquet under {layout.VALIDATED}{dataset}/ (one file per run), bad rows "
            f"under {layout.rejected_records_prefix(dataset)} with a reason. A file that cannot "
            f"be read or whose header is wrong moves whole under {layout.REJECTED}, with its "
            "reason in the files table; the run's other files go on."
        ),
    )
    def validated(
        context: dg.AssetExecutionContext,
        config: IngestFiles,
        lake: LakeResource,
        metrics: MetricsSink,
    ) -> dg.MaterializeResult:
        return validate_run(context, contract, config, lake.lake(), metrics, limits=limits)

    return validated
