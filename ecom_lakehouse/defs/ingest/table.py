"""``<dataset>``: the step that merges a run's batch into the Delta table, and its checks."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.contracts.history import SKIPPED
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.lake.uploads import millis
from ecom_lakehouse.core.pipeline import (
    batch_uploads,
    has_batch,
)
from ecom_lakehouse.core.sql import duckdb_sql
from ecom_lakehouse.core.sql.checks import TableCheck, table_checks
from ecom_lakehouse.core.tables import history
from ecom_lakehouse.core.tables.evolution import SchemaChangeRefused
from ecom_lakehouse.core.tables.reporting import (
    ALREADY_COMMITTED_FILES,
    FILES,
    metadata_value,
    upload_metadata,
)
from ecom_lakehouse.defs.history import record_history
from ecom_lakehouse.defs.ingest.config import batch_id, dataset_tags
from ecom_lakehouse.defs.ingest.files import ALREADY_APPLIED, failure_reason, files_table
from ecom_lakehouse.defs.schema import column_schema
from ecom_lakehouse.names import DatasetNames
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.merge_engines import Load, MergeEngine
from ecom_lakehouse.resources.metrics import MetricsSink
from ecom_lakehouse.resources.sql_engines import SqlEngine


def table_schema(contract: DatasetContract) -> dg.TableSchema:
    return column_schema(contract.table_columns, contract.key_columns)


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
    batch, dataset = batch_id(context), contract.name
    if not has_batch(lake, contract, batch):
        context.log.info(
            "nothing to load: no file of the run was left to take (the validated step's "
            "files table says where each one is)"
        )
        return
    context.add_asset_metadata(
        {
            "dagster/uri": lake.url(layout.table_path(dataset)),
            "dagster/column_schema": table_schema(contract),
        }
    )
    started = time.monotonic()
    manifest = history.read_manifest(lake, dataset, batch)
    run_id = context.run.run_id
    try:
        result = merge_engine.load(context, Load(lake, sql, contract, checks, batch))
    except Exception as error:  # recorded, then raised as it was
        uploads = [upload for upload, _ in manifest.values()]
        attempts = history.failed(dataset, uploads, failure_reason(error), run_id)
        record_history(context, "the failed load", lambda: history.record(lake, attempts))
        if isinstance(error, SchemaChangeRefused):  # the contract's author has a decision
            raise dg.Failure(description=str(error)) from None
        raise
    committed_at = millis(datetime.now(UTC))
    version = int(metadata_value(result.metadata or {}, "table_version"))
    before = set(metadata_value(result.metadata or {}, ALREADY_COMMITTED_FILES) or [])
    uploads = batch_uploads(lake, contract, batch)
    applied = [
        history.Attempt.of(dataset, u, SKIPPED, reason=ALREADY_APPLIED, run_id=run_id)
        for u in uploads
        if u.file_key in before
    ]
    record_history(
        context,
        "the run's loads",
        lambda: history.record_loads(
            lake, dataset, version, run_id=run_id, known=manifest, also=applied
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
    metrics.publish({**{k: metadata_value(loaded, k) for k in loaded}, **figures}, dataset)
    yield result


def table_asset(
    contract: DatasetContract, names: DatasetNames, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    """``<dataset>``, the Delta table, with its checks: the run's batch merged (``load_run``).
    A multi-asset of one, for ``can_subset``: with nothing left to load, the step yields
    neither the table nor its checks (both optional then), and the archive step is skipped."""
    dataset, checks = contract.name, table_checks(contract)

    @dg.multi_asset(
        name=names.table.to_python_identifier(),
        specs=[
            dg.AssetSpec(
                key=names.table,
                deps=[names.validated],
                kinds={"deltalake"},
                group_name=names.group,
                tags=dataset_tags(contract),
                description=(
                    f"{contract.description} Delta table at {layout.table_path(dataset)}, "
                    f"upserted on {contract.key_label}; a run's files are merged in one commit "
                    "that records each file's upload (exactly once per file). rows_* are the "
                    "run's totals."
                ),
                metadata={
                    "dagster/column_schema": table_schema(contract),
                    "dagster/table_name": dataset,
                    "primary_key": contract.key_label,
                    "partitioned_by": contract.partition_by or "(none)",
                },
            )
        ],
        check_specs=[
            dg.AssetCheckSpec(check.name, asset=names.table, description=check.description)
            for check in checks
        ],
        partitions_def=partitions,
        pool=names.pool,
        can_subset=True,
    )
    def table(
        context: dg.AssetExecutionContext,
        lake: LakeResource,
        sql: SqlEngine,
        merge_engine: MergeEngine,
        metrics: MetricsSink,
    ) -> Iterator[dg.MaterializeResult]:
        duckdb_sql.for_run(lake.lake(), context.run.run_id)
        yield from load_run(
            context,
            contract=contract,
            checks=checks,
            lake=lake.lake(),
            sql=sql,
            merge_engine=merge_engine,
            metrics=metrics,
        )

    return table
