"""The local engine: Delta Lake MERGE with delta-rs, exactly once per file.

Exactly-once lives inside the data commit: each merge carries a Delta application transaction
(``txn``) whose app id names the upload (file key and ETag) and whose version is the upload's
version (its last-modified time in milliseconds). A replay of an upload already committed is
detected from the table itself, so a crash between the commit and anything after it cannot
double-apply it. The same content uploaded again later (same ETag, later time) is applied
again: the last upload of a key wins, even if it reverts an earlier change.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core.merge_spec import (
    SOURCE,
    TARGET,
    MergeOutcome,
    changed_predicate,
    merge_predicate,
)
from ecom_lakehouse.core.uploads import Upload


def open_or_create(
    contract: DatasetContract, uri: str, storage_options: dict[str, str]
) -> DeltaTable:
    try:
        return DeltaTable(uri, storage_options=storage_options)
    except TableNotFoundError:
        # mode="ignore": when two writers race to create it, both end with the same table.
        return DeltaTable.create(
            uri,
            schema=contract.arrow_schema,
            partition_by=[contract.partition_by] if contract.partition_by else None,
            name=contract.name,
            description=contract.description,
            mode="ignore",
            storage_options=storage_options,
        )


def cannot_match(table: DeltaTable, contract: DatasetContract, batch: pa.Table) -> bool:
    """Whether no row of the batch can match a row of the table, from the log alone: no data
    file lies in the batch's partitions (a new day) or, for a numeric key, no such file's key
    range (its min/max statistics) overlaps the batch's (new orders)."""
    files = pa.table(table.get_add_actions(flatten=True))
    if files.num_rows and contract.partition_by:
        incoming = batch.column(contract.partition_by)
        if incoming.null_count:
            return False
        held = files.column(f"partition.{contract.partition_by}").cast(incoming.type)
        files = files.filter(pc.is_in(held, value_set=pc.unique(incoming)))
    if files.num_rows == 0:
        return True
    key = batch.column(contract.primary_key)
    low, high = f"min.{contract.primary_key}", f"max.{contract.primary_key}"
    # String statistics may be truncated, so only numeric ranges are trusted.
    if not pa.types.is_integer(key.type) or low not in files.column_names:
        return False
    bounds = pc.min_max(key)
    overlapping = pc.or_kleene(  # a file without statistics counts as overlapping
        pc.invert(
            pc.or_(
                pc.less(files.column(high), bounds["min"]),
                pc.greater(files.column(low), bounds["max"]),
            )
        ),
        pc.or_(pc.is_null(files.column(low)), pc.is_null(files.column(high))),
    )
    return not pc.any(overlapping).as_py()


def merge_batch(
    contract: DatasetContract,
    uri: str,
    storage_options: dict[str, str],
    batch: pa.Table,
    upload: Upload,
) -> MergeOutcome:
    table = open_or_create(contract, uri, storage_options)
    txn_app = upload.txn_app_id(contract.name)
    committed = table.transaction_version(txn_app)
    if committed is not None and committed >= upload.version:
        return MergeOutcome(0, 0, 0, table.version(), already_committed=True)
    commit = _commit_properties(txn_app, upload)
    if cannot_match(table, contract, batch):
        # The merge's result would be an append: appending costs a fraction of it. Safe because
        # one writer at a time commits to a table (the Dagster pool per table).
        write_deltalake(
            table,
            batch.cast(contract.arrow_schema),
            mode="append",
            commit_properties=commit,
            storage_options=storage_options,
        )
        table.update_incremental()
        return MergeOutcome(batch.num_rows, 0, 0, table.version(), already_committed=False)
    metrics = (
        table.merge(
            batch.cast(contract.arrow_schema),
            predicate=merge_predicate(contract, _partition_values(contract, batch)),
            source_alias=SOURCE,
            target_alias=TARGET,
            commit_properties=commit,
        )
        .when_matched_update_all(predicate=changed_predicate(contract))
        .when_not_matched_insert_all()
        .execute()
    )
    inserted = metrics["num_target_rows_inserted"]
    updated = metrics["num_target_rows_updated"]
    version = table.version()
    if inserted == 0 and updated == 0 and table.transaction_version(txn_app) != upload.version:
        # delta-rs skips the commit when nothing changed; record the file's txn anyway so the
        # upload counts as applied (a metadata-only commit with no data files).
        table = DeltaTable(uri, storage_options=storage_options)
        version = _commit_txn_only(table, _commit_properties(txn_app, upload))
    return MergeOutcome(
        inserted=inserted,
        updated=updated,
        unchanged=batch.num_rows - inserted - updated,
        table_version=version,
        already_committed=False,
    )


def _commit_properties(txn_app: str, upload: Upload) -> CommitProperties:
    return CommitProperties(
        app_transactions=[Transaction(app_id=txn_app, version=upload.version)],
        custom_metadata={"ecom_lakehouse.source_file": upload.file_key},
    )


def _commit_txn_only(table: DeltaTable, commit: CommitProperties) -> int:
    table.create_write_transaction(
        actions=[],
        mode="append",
        schema=table.schema(),
        partition_by=table.metadata().partition_columns,
        commit_properties=commit,
    )
    table.update_incremental()
    return table.version()


def _partition_values(contract: DatasetContract, batch: pa.Table) -> list[object]:
    if not contract.partition_by or not batch.num_rows:
        return []
    return pc.unique(batch.column(contract.partition_by).drop_null()).to_pylist()


def table_exists(uri: str, storage_options: dict[str, str]) -> bool:
    return DeltaTable.is_deltatable(uri, storage_options=storage_options)


def table_row_count(uri: str, storage_options: dict[str, str]) -> int | None:
    """Rows in the table from the log's file statistics (no data is read)."""
    try:
        table = DeltaTable(uri, storage_options=storage_options)
    except TableNotFoundError:
        return None
    actions = pa.table(table.get_add_actions(flatten=True))
    return int(pc.sum(actions.column("num_records")).as_py() or 0)
