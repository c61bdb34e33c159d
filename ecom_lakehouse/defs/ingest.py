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

import functools
import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
from pydantic import Field

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.contracts.history import SKIPPED
from ecom_lakehouse.core import history, layout
from ecom_lakehouse.core.checks import TableCheck, table_checks
from ecom_lakehouse.core.evolution import SchemaChangeRefused
from ecom_lakehouse.core.history import files_landed_on
from ecom_lakehouse.core.pipeline import (
    Delivery,
    FileValidation,
    archive_batch,
    batch_uploads,
    has_batch,
    not_loaded,
    validate_batch,
)
from ecom_lakehouse.core.readers import NO_LIMITS, ReadLimits
from ecom_lakehouse.core.reporting import (
    ALREADY_COMMITTED_FILES,
    FILES,
    FileValue,
    metadata_value,
    upload_metadata,
)
from ecom_lakehouse.core.storage import Lake
from ecom_lakehouse.core.uploads import millis
from ecom_lakehouse.defs.history import record_history
from ecom_lakehouse.defs.schema import column_schema
from ecom_lakehouse.names import names_of
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.merge_engines import Load, MergeEngine
from ecom_lakehouse.resources.metrics import MetricsSink
from ecom_lakehouse.resources.sql_engines import SqlEngine


def landing_days(start: str) -> dg.DailyPartitionsDefinition:
    """The days files land on (UTC), from ``start`` through today."""
    return dg.DailyPartitionsDefinition(start_date=start, end_offset=1, timezone="UTC")


class IngestFiles(dg.Config):
    """What an ingest run takes: the files listed (keys under raw/), else every upload that
    landed on the run's day."""

    files: list[str] = Field(
        default_factory=list,
        description=(
            "Files to take (keys under raw/, e.g. orders/orders_apr_2025.xlsx). Leave empty "
            "to re-process every upload that landed on the partition's day."
        ),
    )
    etags: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "The uploads the sensor started the run for (file -> ETag). A file found loaded, "
            "rejected or replaced by another run is skipped, not processed again. Leave empty "
            "to re-process the files from wherever they are (raw/, archived/ or rejected/)."
        ),
    )


def ingest_run_config(
    contract: DatasetContract, files: Sequence[str], etags: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The run config's ops section of an ingest run that takes ``files`` (with the uploads
    the sensor saw, ``etags``, or none: a re-process of each from wherever it is)."""
    config = IngestFiles(files=list(files), etags=dict(etags or {}))
    validated = names_of(contract).validated.to_python_identifier()
    return {"ops": {validated: {"config": config.model_dump()}}}


def run_files(
    context: dg.AssetExecutionContext, config: IngestFiles, lake: Lake, contract: DatasetContract
) -> list[str]:
    """The files the run takes: its config's, else the uploads that landed on its day."""
    if config.files:
        return config.files
    day = date.fromisoformat(context.partition_key)
    files = files_landed_on(lake, contract, day)
    context.log.info(f"{len(files)} upload(s) of {contract.name} landed on {day}")
    return files


def table_schema(contract: DatasetContract) -> dg.TableSchema:
    return column_schema(contract.table_columns, contract.key_columns)


ALREADY_APPLIED = "already applied: the table had recorded this upload"


def failure_reason(error: Exception) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"[:1000]


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
    metrics.publish(figures, contract.name)
    return dg.MaterializeResult(
        metadata={
            FILES: files_table(rows),
            **figures,
            "dagster/row_count": sum(int(row.get("rows_valid") or 0) for row in rows),
            "validated_path": batch.key,
        }
    )


def load_run(
    context: dg.AssetExecutionContext,
    *,
    contract: DatasetContract,
    checks: list[TableCheck],
    lake: Lake,
    sql: SqlEngine,
    merge_engine: MergeEngine,
    metrics: MetricsSink,
) -> Iterator[dg.MaterializeResult]:
    """The table step: the batch merged (nothing when validation left none), its loads
    recorded in the history."""
    batch, ds = batch_id(context), contract.name
    if not has_batch(lake, contract, batch):
        context.log.info(
            "nothing to load: no file of the run was left to take (the validated step's "
            "files table says where each one is)"
        )
        return
    context.add_asset_metadata(
        {
            "dagster/uri": lake.url(layout.table_path(ds)),
            "dagster/column_schema": table_schema(contract),
        }
    )
    started = time.monotonic()
    manifest = history.read_manifest(lake, ds, batch)
    run_id = context.run.run_id
    try:
        result = merge_engine.load(context, Load(lake, sql, contract, checks, batch))
    except Exception as error:  # recorded, then raised as it was
        uploads = [upload for upload, _ in manifest.values()]
        attempts = history.failed(ds, uploads, failure_reason(error), run_id)
        record_history(context, "the failed load", lambda: history.record(lake, attempts))
        if isinstance(error, SchemaChangeRefused):  # the contract's author has a decision
            raise dg.Failure(description=str(error)) from None
        raise
    committed_at = millis(datetime.now(UTC))
    version = int(metadata_value(result.metadata or {}, "table_version"))
    before = set(metadata_value(result.metadata or {}, ALREADY_COMMITTED_FILES) or [])
    uploads = batch_uploads(lake, contract, batch)
    applied = [
        history.Attempt.of(ds, u, SKIPPED, reason=ALREADY_APPLIED, run_id=run_id)
        for u in uploads
        if u.file_key in before
    ]
    record_history(
        context,
        "the run's loads",
        lambda: history.record_loads(
            lake, ds, version, run_id=run_id, known=manifest, also=applied
        ),
    )
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


def ingest_definitions(
    contract: DatasetContract,
    partitions: dg.PartitionsDefinition,
    limits: ReadLimits = NO_LIMITS,
) -> dg.Definitions:
    """The dataset's assets and its ingest job (see the module's docstring)."""
    ds, n = contract.name, names_of(contract)
    checks = table_checks(contract)
    tags = {"dataset": ds}
    schema = table_schema(contract)
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
        return validate_run(context, contract, config, lake.lake(), metrics, limits=limits)

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
        yield from load_run(
            context,
            contract=contract,
            checks=checks,
            lake=lake.lake(),
            sql=sql,
            merge_engine=merge_engine,
            metrics=metrics,
        )

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
