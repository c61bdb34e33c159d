"""Table maintenance as Dagster work: a job with one op per Delta table (in the table's pool,
so it never races a load or refresh of that table), scheduled nightly and runnable from the UI
(select the ops of the tables to maintain) or as ``ecom-lakehouse maintain``.

Each op reports what it did as an observation of the table's asset (files and bytes before and
after, files compacted and vacuumed, the time it took): the UI lists and plots them."""

from collections.abc import Iterable
from typing import Any

import dagster as dg
from pydantic import Field

from ecom_lakehouse.contracts import TableSpec
from ecom_lakehouse.core.tables.maintenance import MaintenanceReport, maintain_table
from ecom_lakehouse.defs.schedules import schedule_timing
from ecom_lakehouse.names import (
    MAINTENANCE_JOB,
    MAINTENANCE_SCHEDULE,
    maintenance_op,
    table_key,
    table_pool,
)
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.settings import MaintenanceSettings


class MaintainConfig(dg.Config):
    retention_hours: int | None = Field(
        default=None,
        ge=0,
        description=(
            "VACUUM's retention for this run, replacing the table's "
            "delta.deletedFileRetentionDuration (7 days by default) even when shorter: files "
            "a reader of an older version still needs are deleted. Leave empty to keep the "
            "table's."
        ),
    )


def report_metadata(report: MaintenanceReport) -> dict[str, Any]:
    before, after = report.before, report.after
    return {
        "files_before": before.files,
        "files_after": after.files,
        "bytes_before": before.bytes,
        "bytes_after": after.bytes,
        "most_files_in_a_partition_before": before.most_files_in_a_partition,
        "most_files_in_a_partition_after": after.most_files_in_a_partition,
        "files_compacted": report.files_compacted,
        "files_written": report.files_written,
        "z_ordered_by": ", ".join(report.z_ordered_by) or "-",
        "checkpoint_version": report.checkpoint_version,
        "log_files_removed": report.log_files_removed,
        "files_vacuumed": report.files_vacuumed,
        "vacuum_retention_hours": report.retention_hours,
        "table_version": report.version_after,
        "seconds": report.seconds,
    }


def maintenance_op_def(spec: TableSpec) -> dg.OpDefinition:
    @dg.op(
        name=maintenance_op(spec),
        pool=table_pool(spec),
        tags={"table": spec.name},
        description=f"Compact, checkpoint and VACUUM the {spec.name} Delta table.",
    )
    def maintain(
        context: dg.OpExecutionContext, config: MaintainConfig, lake: LakeResource
    ) -> None:
        report = maintain_table(lake.lake(), spec, retention_hours=config.retention_hours)
        if report is None:
            context.log.info(f"{spec.name} has no Delta table yet: nothing to maintain")
            return
        context.log.info(
            f"{spec.name}: {report.before.files} -> {report.after.files} files, "
            f"{report.files_vacuumed} vacuumed, in {report.seconds:.2f} s"
        )
        context.log_event(
            dg.AssetObservation(asset_key=table_key(spec), metadata=report_metadata(report))
        )

    return maintain


def maintenance_definitions(
    specs: Iterable[TableSpec], settings: MaintenanceSettings
) -> dg.Definitions:
    ops = [maintenance_op_def(spec) for spec in specs]

    @dg.job(
        name=MAINTENANCE_JOB,
        description="Compact, checkpoint and VACUUM every Delta table (select ops for some).",
    )
    def table_maintenance() -> None:
        for op in ops:
            op()

    schedule = dg.ScheduleDefinition(
        name=MAINTENANCE_SCHEDULE,
        job=table_maintenance,
        **schedule_timing(settings),
        description="Nightly table maintenance (LAKEHOUSE_MAINTENANCE_CRON, UTC).",
    )
    return dg.Definitions(jobs=[table_maintenance], schedules=[schedule])
