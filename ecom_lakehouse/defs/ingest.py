"""The ingest factory: one contract in, the dataset's assets and ingest job out.

Per dataset: ``<dataset>_validated`` -> ``<dataset>`` (the Delta table) ->
``<dataset>_archived``, and the ``<dataset>_ingest`` job that runs the three for what one run
takes. A dynamic partition per run: a landed file's key when the run took that one file, a
batch key (``<folder>/_batch/<time>-<digest>``) when it took several, listed in its run config.
Each materialization carries a ``files`` table: what happened to each file of the run (one
event per asset and run, however many files: per-file events would cost more than the files).
"""

import functools
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from ecom_lakehouse.contracts import Column, DatasetContract
from ecom_lakehouse.core import layout
from ecom_lakehouse.core.checks import table_checks
from ecom_lakehouse.core.evolution import SchemaChangeRefused
from ecom_lakehouse.core.pipeline import (
    Delivery,
    FileValidation,
    archive_batch,
    batch_uploads,
    has_batch,
    validate_batch,
)
from ecom_lakehouse.core.reporting import (
    ALREADY_COMMITTED_FILES,
    FILES,
    FileValue,
    metadata_value,
    upload_metadata,
)
from ecom_lakehouse.core.uploads import millis
from ecom_lakehouse.names import names_of
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.merge_engines import Load, MergeEngine
from ecom_lakehouse.resources.metrics import MetricsSink
from ecom_lakehouse.resources.sql_engines import SqlEngine


def column_schema(columns: Iterable[Column], key: tuple[str, ...]) -> dg.TableSchema:
    """A table's columns as the UI shows them (a one-column key is marked unique)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.type,
                description=c.description,
                constraints=dg.TableColumnConstraints(
                    nullable=not c.required, unique=key == (c.name,)
                ),
            )
            for c in columns
        ]
    )


def file_partitions(contract: DatasetContract) -> dg.DynamicPartitionsDefinition:
    return dg.DynamicPartitionsDefinition(name=names_of(contract).partitions)


class IngestFiles(dg.Config):
    """What an ingest run takes: the landed files (keys under raw/) of a batch partition.
    Empty for a file's own partition, which is the file."""

    files: list[str] = Field(default_factory=list, description="Landed files (keys under raw/).")
    etags: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "The uploads the sensor started the run for (file -> ETag). A file found loaded, "
            "rejected or replaced by another run is skipped, not processed again. Leave empty "
            "to re-process the files from wherever they are (raw/, archived/ or rejected/)."
        ),
    )


def run_files(context: dg.AssetExecutionContext, config: IngestFiles) -> list[str]:
    key = context.partition_key
    if config.files:
        return config.files
    if layout.is_batch_partition_key(key):
        raise dg.Failure(
            f"{key} is a batch of files, listed in the run config of the run that took it: "
            "re-execute that run (or put a file back in raw/ to load it again on its own)"
        )
    return [key]


def batch_id(context: dg.AssetExecutionContext) -> str:
    """The run's batch: the same for every step of a run and for its re-executions, which
    pick up what an earlier attempt validated."""
    return context.run.root_run_id or context.run.run_id


def file_validation(done: FileValidation) -> dict[str, FileValue]:
    """One file's validation: its row of the validated materialization's ``files`` table."""
    if done.rejection is not None:
        r = done.rejection
        return {
            "file": done.file_key,
            "status": "rejected",
            "rejection": r.kind,
            "reason": r.reason,
            "moved_to": r.rejected_key,
        }
    if done.skipped is not None:
        return {
            "file": done.file_key,
            "status": "skipped",
            "reason": done.skipped.reason,
            "now_at": done.skipped.now_at,
        }
    if done.upload is None or done.check is None or done.source is None:
        raise ValueError(f"{done.file_key}: validated without an upload or a check")
    check = done.check
    return {
        "file": done.file_key,
        "status": "validated",
        "source_etag": done.upload.etag,
        "upload_version": done.upload.version,
        "format": done.format or "",
        "rows_read": check.rows_read,
        "rows_valid": check.rows_valid,
        "rows_rejected": check.rejected.num_rows if check.rejected is not None else 0,
        "rejected_by_reason": json.dumps(check.rejected_by_reason),
        "rejected_records_path": done.rejected_records_key or "",
        "rescued_columns": ", ".join(check.extra_columns),
    }


def log_file_outcomes(log: dg.DagsterLogManager, rows: list[dict[str, FileValue]]) -> None:
    """A line per file that was not simply validated: skipped, rejected, or with bad rows."""
    for row in rows:
        if row["status"] == "skipped":
            log.info(f"{row['file']}: skipped: {row['reason']} (now {row['now_at']})")
        elif row["status"] != "validated":
            log.warning(f"{row['file']}: {row['status']}: {row['reason']}")
        elif row["rows_rejected"]:
            log.warning(
                f"{row['file']}: {row['rows_rejected']} of {row['rows_read']} rows "
                f"rejected: {row['rejected_by_reason']}"
            )


def files_table(rows: list[dict[str, FileValue]]) -> dg.TableMetadataValue:
    """Per-file outcomes as a table the UI shows (columns: every key any row has)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return dg.MetadataValue.table(
        records=[dg.TableRecord({c: row.get(c) for c in columns}) for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(c, _kind(rows, c)) for c in columns]),
    )


def _kind(rows: list[dict[str, FileValue]], column: str) -> str:
    kinds = {type(row[column]) for row in rows if row.get(column) is not None}
    return {frozenset({bool}): "bool", frozenset({int}): "int"}.get(frozenset(kinds), "string")


def ingest_definitions(contract: DatasetContract) -> dg.Definitions:
    """The dataset's assets and its ingest job (see the module's docstring)."""
    ds, n = contract.name, names_of(contract)
    partitions = file_partitions(contract)
    checks = table_checks(contract)
    tags = {"dataset": ds}
    schema = column_schema(contract.table_columns, contract.key_columns)
    ingest_asset = functools.partial(
        dg.asset, partitions_def=partitions, group_name=n.group, tags=tags
    )

    @ingest_asset(
        key=n.validated,
        kinds={"parquet"},
        description=(
            f"Landed {ds} files, read and checked against the contract together: good rows as "
            f"typed Parquet under {layout.VALIDATED}{ds}/ (one file per run), bad rows under "
            f"{layout.rejected_records_prefix(ds)} with a reason. A file that cannot be read "
            f"or whose header is wrong moves whole under {layout.REJECTED}, with its reason in "
            "the files table; the run's other files go on."
        ),
    )
    def validated(
        context: dg.AssetExecutionContext,
        config: IngestFiles,
        lake: LakeResource,
        metrics: MetricsSink,
    ) -> dg.MaterializeResult:
        files = run_files(context, config)
        context.log.info(f"{len(files)} file(s): {', '.join(files[:20])}")
        # a re-execution takes its files as the run it retries did: one delivery, applied once
        delivery = Delivery(config.etags, retry=context.run.root_run_id is not None)
        batch = validate_batch(lake.lake(), contract, files, batch_id(context), delivery)
        rows = [file_validation(done) for done in batch.files]
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
        metrics.publish(figures, ds)
        return dg.MaterializeResult(
            metadata={
                FILES: files_table(rows),
                **figures,
                "dagster/row_count": sum(int(row.get("rows_valid") or 0) for row in rows),
                "validated_path": batch.key,
            }
        )

    # A multi-asset of one, for ``can_subset``: with nothing left to load, the step yields
    # neither the table nor its checks (both optional then), and the archive step is skipped.
    @dg.multi_asset(
        name=n.table.to_python_identifier(),
        specs=[
            dg.AssetSpec(
                key=n.table,
                deps=[n.validated],
                kinds={"deltalake"},
                group_name=n.group,
                tags=tags,
                description=(
                    f"{contract.description} Delta table at {layout.table_path(ds)}, upserted "
                    f"on {contract.key_label}; a run's files are merged in one commit that "
                    "records each file's upload (exactly once per file). rows_* are the run's "
                    "totals."
                ),
                metadata={
                    "dagster/column_schema": schema,
                    "dagster/table_name": ds,
                    "primary_key": contract.key_label,
                    "partitioned_by": contract.partition_by or "(none)",
                },
            )
        ],
        check_specs=[
            dg.AssetCheckSpec(check.name, asset=n.table, description=check.description)
            for check in checks
        ],
        partitions_def=partitions,
        pool=n.pool,
        can_subset=True,
    )
    def table(
        context: dg.AssetExecutionContext,
        lake: LakeResource,
        sql: SqlEngine,
        merge_engine: MergeEngine,
        metrics: MetricsSink,
    ) -> Iterator[dg.MaterializeResult]:
        the_lake, batch = lake.lake(), batch_id(context)
        if not has_batch(the_lake, contract, batch):
            context.log.info(
                "nothing to load: no file of the run was left to take (the validated step's "
                "files table says where each one is)"
            )
            return
        context.add_asset_metadata(
            {
                "dagster/uri": the_lake.url(layout.table_path(ds)),
                "dagster/column_schema": schema,
            }
        )
        started = time.monotonic()
        try:
            result = merge_engine.load(context, Load(the_lake, sql, contract, checks, batch))
        except SchemaChangeRefused as refused:  # the contract's author has a decision to make
            raise dg.Failure(description=str(refused)) from None
        committed_at = millis(datetime.now(UTC))
        version = int(metadata_value(result.metadata or {}, "table_version"))
        before = set(metadata_value(result.metadata or {}, ALREADY_COMMITTED_FILES) or [])
        uploads = batch_uploads(the_lake, contract, batch)
        rows = [
            {"file": u.file_key, **upload_metadata(u, version, u.file_key in before, committed_at)}
            for u in uploads
        ]
        lags = [int(str(row["lag_ms"])) for row in rows if "lag_ms" in row]
        figures = {
            # plotted by the UI across runs: how fast loads are, how late files land in
            "load_seconds": round(time.monotonic() - started, 3),
            "lag_seconds_max": round(max([0, *lags]) / 1000, 3),
        }
        context.add_asset_metadata({FILES: files_table(rows), **figures})
        loaded = result.metadata or {}
        metrics.publish({**{k: metadata_value(loaded, k) for k in loaded}, **figures}, ds)
        yield result

    @ingest_asset(
        key=n.archived,
        deps=[n.table],
        description=f"The raw files, moved to {layout.ARCHIVED} once their rows are committed.",
    )
    def archived(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        outcomes = archive_batch(lake.lake(), contract, batch_id(context))
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

    selection: dg.AssetSelection = dg.AssetSelection.assets(n.validated, n.table, n.archived)
    if contract.freshness is not None:  # its freshness check is its sensor's to run, not a load's
        selection -= dg.AssetSelection.checks(n.freshness_check)
    job = dg.define_asset_job(
        name=n.ingest_job,
        selection=selection,
        description=f"Validate, merge and archive a batch of landed {ds} files (or one).",
    )
    return dg.Definitions(assets=[validated, table, archived], jobs=[job])
