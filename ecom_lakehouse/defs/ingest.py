"""The asset factory: one contract in, the dataset's whole slice of the asset graph out.

Per dataset, partitioned by file (one dynamic partition per landed file):
``<dataset>_validated`` -> ``<dataset>`` (the Delta table) -> ``<dataset>_archived``;
and unpartitioned, ``<dataset>_catalog`` (the table's catalog entry).
"""

import json
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core import layout
from ecom_lakehouse.core.checks import table_checks
from ecom_lakehouse.core.delta import table_exists
from ecom_lakehouse.core.pipeline import (
    FileRejected,
    SourceMissing,
    archive_file,
    validate_file,
)
from ecom_lakehouse.names import ingest_job_name
from ecom_lakehouse.resources.catalogs import CatalogResource
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.merge_engines import LocalMergeEngineResource
from ecom_lakehouse.resources.sql_engines import SqlEngineResource

CATALOG_POOL = "catalog"


def table_pool(dataset: str) -> str:
    """One writer per Delta table at a time (Spark on Glue commits with a single-driver log
    store); the pool's limit is set in the instance's dagster.yaml."""
    return f"delta_table_{dataset}"


def column_schema(contract: DatasetContract) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.type,
                description=c.description,
                constraints=dg.TableColumnConstraints(
                    nullable=not c.required, unique=c.name == contract.primary_key
                ),
            )
            for c in contract.columns
        ]
    )


@dataclass(frozen=True)
class DatasetAssets:
    contract: DatasetContract
    partitions: dg.DynamicPartitionsDefinition
    assets: list[dg.AssetsDefinition]
    ingest_job: UnresolvedAssetJobDefinition
    catalog_key: dg.AssetKey


def build_dataset_assets(contract: DatasetContract) -> DatasetAssets:
    ds = contract.name
    partitions = dg.DynamicPartitionsDefinition(name=f"{ds}_files")
    validated_key = dg.AssetKey(f"{ds}_validated")
    table_key = dg.AssetKey(ds)
    archived_key = dg.AssetKey(f"{ds}_archived")
    catalog_key = dg.AssetKey(f"{ds}_catalog")
    checks = table_checks(contract)
    tags = {"dataset": ds}

    @dg.asset(
        key=validated_key,
        partitions_def=partitions,
        group_name=ds,
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
        except SourceMissing as missing:
            raise dg.Failure(description=str(missing), allow_retries=False) from None
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
        key=table_key,
        deps=[validated_key],
        partitions_def=partitions,
        group_name=ds,
        kinds={"deltalake"},
        tags=tags,
        pool=table_pool(ds),
        description=(
            f"{contract.description} Delta table at {layout.table_path(ds)}, upserted on "
            f"{contract.primary_key}, exactly once per file."
        ),
        metadata={
            "dagster/column_schema": column_schema(contract),
            "dagster/table_name": ds,
            "primary_key": contract.primary_key,
            "partitioned_by": contract.partition_by or "(none)",
        },
        check_specs=[
            dg.AssetCheckSpec(check.name, asset=table_key, description=check.description)
            for check in checks
        ],
    )
    def table(
        context: dg.AssetExecutionContext,
        lake: LakeResource,
        sql: SqlEngineResource,
        merge_engine: LocalMergeEngineResource,
    ) -> dg.MaterializeResult:
        the_lake = lake.lake()
        result = merge_engine.load(context, the_lake, sql, contract, checks)
        return result._replace(
            metadata={
                **(result.metadata or {}),
                "dagster/uri": the_lake.url(layout.table_path(ds)),
                "dagster/column_schema": column_schema(contract),
            }
        )

    @dg.asset(
        key=archived_key,
        deps=[table_key],
        partitions_def=partitions,
        group_name=ds,
        tags=tags,
        description=f"The raw file, moved to {layout.ARCHIVED} once its rows are committed.",
    )
    def archived(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        source_etag = _latest_metadata(context, table_key, "source_etag")
        outcome = archive_file(lake.lake(), context.partition_key, source_etag)
        if outcome.note:
            context.log.info(f"{context.partition_key}: {outcome.note}")
        return dg.MaterializeResult(
            metadata={"archived_to": outcome.archived_key, "moved": outcome.moved}
        )

    @dg.asset(
        key=catalog_key,
        deps=[table_key],
        group_name=ds,
        kinds={"duckdb"},
        tags=tags,
        pool=CATALOG_POOL,
        automation_condition=(
            dg.AutomationCondition.any_deps_updated()
            & ~dg.AutomationCondition.in_progress()
            & ~dg.AutomationCondition.any_deps_in_progress()
        ),
        description=(
            f"The {ds} table's entry in the catalog analysts query: a DuckDB view locally, "
            "a native Delta table in the Glue Data Catalog (for Athena) in AWS."
        ),
    )
    def catalog(
        context: dg.AssetExecutionContext, lake: LakeResource, catalog: CatalogResource
    ) -> dg.MaterializeResult:
        the_lake = lake.lake()
        if not table_exists(the_lake.url(layout.table_path(ds)), the_lake.storage_options()):
            context.log.info(f"{ds} has no Delta table yet: nothing to register")
            return dg.MaterializeResult(metadata={"registered": False})
        return dg.MaterializeResult(
            metadata={"registered": True, **catalog.register(the_lake, contract)}
        )

    job = dg.define_asset_job(
        name=ingest_job_name(ds),
        selection=dg.AssetSelection.assets(validated_key, table_key, archived_key),
        partitions_def=partitions,
        description=f"Validate, merge and archive one landed {ds} file.",
    )
    return DatasetAssets(
        contract, partitions, [validated, table, archived, catalog], job, catalog_key
    )


def _latest_metadata(context: dg.AssetExecutionContext, key: dg.AssetKey, name: str) -> str:
    """A metadata value of this partition's latest materialization of ``key``."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[context.partition_key]), limit=1
    ).records
    if not records:
        raise dg.Failure(f"{key.to_user_string()} has no materialization for this file yet")
    materialization = records[0].asset_materialization
    assert materialization is not None
    return str(materialization.metadata[name].value)
