"""Keeping a Delta table healthy: compaction (bin-packing small files per partition, Z-ordered
where the table's contract says), a checkpoint and the log's clean-up, then VACUUM.

Exactly-once survives it: the uploads' application transactions (``txn``) are carried into
the checkpoint, so a re-delivered upload is still recognised as loaded. Compaction commits
change no data (``dataChange`` false): readers of the change feed and the merge see the same
rows. VACUUM's retention is the table's ``delta.deletedFileRetentionDuration`` (7 days unless
the table says otherwise), never shorter unless the operator gives one explicitly.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from ecom_lakehouse.contracts import TableSpec
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.tables.delta import retrying_conflicts

MB = 1 << 20
LOG_DIR = "_delta_log/"


@dataclass(frozen=True)
class TableFiles:
    """A table's live data files (what its latest version reads)."""

    files: int
    bytes: int
    partitions: int
    most_files_in_a_partition: int

    @classmethod
    def of(cls, table: DeltaTable, partition_by: str | None) -> TableFiles:
        actions = pa.table(table.get_add_actions(flatten=True))
        if not actions.num_rows:
            return cls(0, 0, 0, 0)
        size = int(pc.sum(actions.column("size_bytes")).as_py())
        column = f"partition.{partition_by}" if partition_by else None
        if column is None or column not in actions.column_names:
            return cls(actions.num_rows, size, 1, actions.num_rows)
        counts = actions.group_by(column).aggregate([([], "count_all")]).column("count_all")
        return cls(actions.num_rows, size, len(counts), int(pc.max(counts).as_py()))


@dataclass(frozen=True)
class MaintenanceReport:
    table: str
    version_before: int
    version_after: int
    before: TableFiles
    after: TableFiles
    files_compacted: int  # data files rewritten into larger ones (no longer in the table)
    files_written: int
    z_ordered_by: tuple[str, ...]
    checkpoint_version: int
    log_files_removed: int  # commit files older than the log's retention, before the checkpoint
    files_vacuumed: int  # data files no version within the retention reads, deleted
    retention_hours: float
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def maintain_table(
    lake: Lake, spec: TableSpec, *, retention_hours: int | None = None
) -> MaintenanceReport | None:
    """Compact, checkpoint, clean the log and VACUUM the table of ``spec`` (None when it has no
    Delta table yet). ``retention_hours``, given explicitly, replaces the table's retention for
    this VACUUM, even if shorter (the operator's decision)."""
    started = time.perf_counter()
    uri, options = lake.url(layout.table_path(spec.name)), lake.storage_options()
    try:
        table = DeltaTable(uri, storage_options=options)
    except TableNotFoundError:
        return None
    version_before, before = table.version(), TableFiles.of(table, spec.partition_by)
    target = spec.maintenance.target_file_mb * MB
    # Z-ordering rewrites every file it is given: only worth it where files are to be merged
    # (a table already at one file per partition is left alone, not rewritten each night).
    z_order = spec.maintenance.z_order_by if before.most_files_in_a_partition > 1 else ()

    def compact() -> dict:
        fresh = DeltaTable(uri, storage_options=options)
        if z_order:
            return fresh.optimize.z_order(z_order, target_size=target)
        return fresh.optimize.compact(target_size=target)

    # A load that commits meanwhile makes the rewrite's commit fail: look again and redo it.
    metrics = retrying_conflicts(
        compact, f"{spec.name}: compaction", "the table is unchanged: run the maintenance again"
    )
    table = DeltaTable(uri, storage_options=options)
    checkpoint_version = table.version()
    table.create_checkpoint()
    log_prefix = layout.table_path(spec.name) + "/" + LOG_DIR
    commits_before = _commit_files(lake, log_prefix)
    table.cleanup_metadata()
    log_files_removed = commits_before - _commit_files(lake, log_prefix)
    retention = retention_hours if retention_hours is not None else _retention_hours(table)
    vacuumed = table.vacuum(
        retention_hours=retention,
        dry_run=False,
        enforce_retention_duration=retention_hours is None,
    )
    table = DeltaTable(uri, storage_options=options)
    return MaintenanceReport(
        table=spec.name,
        version_before=version_before,
        version_after=table.version(),
        before=before,
        after=TableFiles.of(table, spec.partition_by),
        files_compacted=int(metrics.get("numFilesRemoved", 0)),
        files_written=int(metrics.get("numFilesAdded", 0)),
        z_ordered_by=z_order,
        checkpoint_version=checkpoint_version,
        log_files_removed=log_files_removed,
        files_vacuumed=len(vacuumed),
        retention_hours=float(retention),
        seconds=round(time.perf_counter() - started, 3),
    )


def _commit_files(lake: Lake, log_prefix: str) -> int:
    return sum(1 for info in lake.list(log_prefix) if info.key.endswith(".json"))


RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"
DEFAULT_RETENTION_HOURS = 7 * 24
HOURS_PER_UNIT = {"week": 168.0, "day": 24.0, "hour": 1.0, "minute": 1 / 60, "second": 1 / 3600}


def _retention_hours(table: DeltaTable) -> int:
    """The table's VACUUM retention (Delta's ``interval <n> <unit>``), in whole hours."""
    value = table.metadata().configuration.get(RETENTION_PROPERTY)
    if not value:
        return DEFAULT_RETENTION_HOURS
    amount, unit = value.lower().removeprefix("interval").split()
    return round(float(amount) * HOURS_PER_UNIT[unit.rstrip("s")])
