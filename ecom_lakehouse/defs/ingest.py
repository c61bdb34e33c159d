"""The ingest factory: one contract in, the dataset's file-partitioned assets and job out.

Per dataset, partitioned by file (one dynamic partition per landed file):
``<dataset>_validated`` -> ``<dataset>`` (the Delta table) -> ``<dataset>_archived``, and the
``<dataset>_ingest`` job that runs the three for one file.
"""

import json
from collections.abc import Iterable

import dagster as dg

from ecom_lakehouse.contracts import Column, DatasetContract
from ecom_lakehouse.core import layout
from ecom_lakehouse.core.checks import table_checks
from ecom_lakehouse.core.pipeline import (
    FileRejected,
    SourceChanged,
    SourceMissing,
    archive_file,
    validate_file,
)
from ecom_lakehouse.core.uploads import Upload
from ecom_lakehouse.names import names_of
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.merge_engines import Load, MergeEngine
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


def ingest_definitions(contract: DatasetContract) -> dg.Definitions:
    """The dataset's file-partitioned assets and its ingest job."""
    ds, n = contract.name, names_of(contract)
    partitions = file_partitions(contract)
    checks = table_checks(contract)
    tags = {"dataset": ds}
    schema = column_schema(contract.table_columns, (contract.primary_key,))

    @dg.asset(
        key=n.validated,
        partitions_def=partitions,
        group_name=n.group,
        kinds={"parquet"},
        tags=tags,
        description=(
            f"A landed {ds} file, read and checked against the contract: good rows as typed "
            f"Parquet under {layout.VALIDATED}{ds}/, bad rows under "
            f"{layout.rejected_records_prefix(ds)} with a reason. A file that cannot be read "
            f"or whose header is wrong moves whole under {layout.REJECTED}."
        ),
    )
    def validated(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        try:
            vf = validate_file(lake.lake(), contract, context.partition_key)
        except FileRejected as rejected:
            raise dg.Failure(
                description=(
                    f"{context.partition_key} rejected ({rejected.kind}): {rejected.reason}"
                ),
                metadata={
                    "rejection": rejected.kind,
                    "reason": rejected.reason,
                    "moved_to": rejected.rejected_key,
                },
                allow_retries=False,
            ) from None
        except (SourceMissing, SourceChanged) as gone:
            raise dg.Failure(description=str(gone), allow_retries=False) from None
        r = vf.result
        metadata: dict[str, dg.RawMetadataValue] = {
            "source": vf.source.key,
            "source_etag": vf.source.etag,
            "format": vf.format,
            "rows_read": r.rows_read,
            "rows_valid": r.valid.num_rows,
            "rows_rejected": r.rejected.num_rows,
            "rejected_by_reason": dg.MetadataValue.json(r.rejected_by_reason),
            "validated_path": vf.validated_key,
            "dagster/row_count": r.valid.num_rows,
        }
        if r.sheets:
            metadata["sheets"] = len(r.sheets)
        if r.extra_columns:
            metadata["ignored_columns"] = ", ".join(r.extra_columns)
        if vf.rejected_records_key:
            metadata["rejected_records_path"] = vf.rejected_records_key
            context.log.warning(
                f"{r.rejected.num_rows} of {r.rows_read} rows rejected: "
                f"{json.dumps(r.rejected_by_reason)}"
            )
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(
        key=n.table,
        deps=[n.validated],
        partitions_def=partitions,
        group_name=n.group,
        kinds={"deltalake"},
        tags=tags,
        pool=n.pool,
        description=(
            f"{contract.description} Delta table at {layout.table_path(ds)}, upserted on "
            f"{contract.primary_key}, exactly once per file."
        ),
        metadata={
            "dagster/column_schema": schema,
            "dagster/table_name": ds,
            "primary_key": contract.primary_key,
            "partitioned_by": contract.partition_by or "(none)",
        },
        check_specs=[
            dg.AssetCheckSpec(check.name, asset=n.table, description=check.description)
            for check in checks
        ],
    )
    def table(
        context: dg.AssetExecutionContext,
        lake: LakeResource,
        sql: SqlEngine,
        merge_engine: MergeEngine,
    ) -> dg.MaterializeResult:
        the_lake = lake.lake()
        context.add_asset_metadata(
            {
                "dagster/uri": the_lake.url(layout.table_path(ds)),
                "dagster/column_schema": schema,
            }
        )
        request = Load(the_lake, sql, contract, checks, context.partition_key)
        return merge_engine.load(context, request)

    @dg.asset(
        key=n.archived,
        deps=[n.table],
        partitions_def=partitions,
        group_name=n.group,
        tags=tags,
        description=f"The raw file, moved to {layout.ARCHIVED} once its rows are committed.",
    )
    def archived(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        outcome = archive_file(lake.lake(), _loaded_upload(context, n.table))
        if outcome.note:
            context.log.info(f"{context.partition_key}: {outcome.note}")
        return dg.MaterializeResult(
            metadata={"archived_to": outcome.archived_key, "moved": outcome.moved}
        )

    job = dg.define_asset_job(
        name=n.ingest_job,
        selection=dg.AssetSelection.assets(n.validated, n.table, n.archived),
        partitions_def=partitions,
        description=f"Validate, merge and archive one landed {ds} file.",
    )
    return dg.Definitions(assets=[validated, table, archived], jobs=[job])


def _loaded_upload(context: dg.AssetExecutionContext, table: dg.AssetKey) -> Upload:
    """The upload this file's latest table materialization committed."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=table, asset_partitions=[context.partition_key]), limit=1
    ).records
    if not records:
        raise dg.Failure(f"{table.to_user_string()} has no materialization for this file yet")
    materialization = records[0].asset_materialization
    assert materialization is not None
    meta = materialization.metadata
    return Upload(
        context.partition_key, str(meta["source_etag"].value), int(meta["upload_version"].value)
    )
