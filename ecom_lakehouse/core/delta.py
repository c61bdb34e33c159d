"""The local engine: Delta Lake MERGE with delta-rs, exactly once per upload, newest wins,
any number of writers.

Exactly-once lives inside the data commit: each commit carries a Delta application transaction
(``txn``) whose app id names the upload (file key and ETag) and whose version is the upload's
(its landing time in ms, or the time of a re-delivery from the archive). A replay of an upload
already committed is detected from the table itself, so a crash between the commit and anything
after it cannot apply it twice.

Writers do not wait for each other: each commits optimistically, and Delta's conflict check
refuses a commit that read what another writer changed meanwhile. Such a conflict is retried
from a fresh snapshot (with backoff, a bounded number of times), where the upload's txn may now
be found committed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Field, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core import layout
from ecom_lakehouse.core.key_locations import locate_keys
from ecom_lakehouse.core.merge_spec import (
    SOURCE,
    TARGET,
    KeyRange,
    MergeOutcome,
    merge_predicate,
    newer_predicate,
)
from ecom_lakehouse.core.storage import Lake
from ecom_lakehouse.core.uploads import Upload

# Commit conflicts are retried this many times in all, waiting about 0.1 s, 0.2 s, 0.4 s, ...
# (at most 5 s, with jitter) in between: ~20 s of a table changing under every attempt.
COMMIT_ATTEMPTS = 8


class TableBusy(Exception):
    """Every attempt to commit lost to another writer."""


def open_or_create(
    contract: DatasetContract, uri: str, storage_options: dict[str, str]
) -> DeltaTable:
    try:
        table = DeltaTable(uri, storage_options=storage_options)
    except TableNotFoundError:
        # mode="ignore": when two writers race to create it, both end with the same table.
        DeltaTable.create(
            uri,
            schema=contract.table_schema,
            partition_by=[contract.partition_by] if contract.partition_by else None,
            name=contract.name,
            description=contract.description,
            configuration=TABLE_PROPERTIES,
            mode="ignore",
            storage_options=storage_options,
        )
        table = DeltaTable(uri, storage_options=storage_options)
    add_missing_columns(table, contract)
    set_missing_properties(table)
    return table


# Every dataset table keeps a change feed (the rows before and after each change): the KPI
# tables are refreshed from it for the days a load touched. Readers are unaffected (writer
# protocol 4, reader 1).
TABLE_PROPERTIES = {"delta.enableChangeDataFeed": "true"}


def set_missing_properties(table: DeltaTable) -> None:
    configured = table.metadata().configuration
    missing = {k: v for k, v in TABLE_PROPERTIES.items() if configured.get(k) != v}
    if missing:
        table.alter.set_table_properties(missing)
        table.update_incremental()


def add_missing_columns(table: DeltaTable, contract: DatasetContract) -> None:
    """Columns of the contract (or audit columns) the table does not have yet are added, as
    nullable columns: rows written before read NULL there."""
    present = set(table.schema().to_arrow().names)
    missing = [f for f in contract.table_schema if f.name not in present]
    if missing:
        table.alter.add_columns([Field.from_arrow(f) for f in missing])
        table.update_incremental()


def with_audit(
    contract: DatasetContract, batch: pa.Table, upload: Upload, loaded_at: datetime | None = None
) -> pa.Table:
    """The batch in the table's schema: the contract's columns, then where each row came from."""
    return (
        audited_batches(contract, batch, upload, loaded_at).read_all().cast(contract.table_schema)
    )


AUDIT_CHUNK_ROWS = 65_536


def audited_batches(
    contract: DatasetContract, batch: pa.Table, upload: Upload, loaded_at: datetime | None = None
) -> pa.RecordBatchReader:
    """The batch in the table's schema, a chunk at a time: a writer that streams it holds one
    chunk's audit columns, never the whole file's (a file key repeated on every row)."""
    rows = batch.select(list(contract.column_names)).cast(contract.arrow_schema)
    moment = pa.scalar(loaded_at or datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    version = pa.scalar(upload.version, pa.int64())

    def chunks() -> Iterator[pa.RecordBatch]:
        for chunk in rows.to_batches(max_chunksize=AUDIT_CHUNK_ROWS):
            n = chunk.num_rows
            audit = [pa.repeat(upload.file_key, n), pa.repeat(version, n), pa.repeat(moment, n)]
            yield pa.RecordBatch.from_arrays([*chunk.columns, *audit], schema=contract.table_schema)

    return pa.RecordBatchReader.from_batches(contract.table_schema, chunks())


def key_range(contract: DatasetContract, batch: pa.Table) -> KeyRange | None:
    """The batch's key range, for keys whose file statistics are exact (numbers, dates): the
    MERGE spells it out so the engine skips every file outside it."""
    key = batch.column(contract.primary_key)
    exact = pa.types.is_integer(key.type) or pa.types.is_date(key.type)
    if not exact or key.null_count == len(key) or not len(key):
        return None
    bounds = pc.min_max(key)
    return KeyRange(bounds["min"].as_py(), bounds["max"].as_py())


def _commit(txn_app: str, upload: Upload, retries: int | None = None) -> CommitProperties:
    return CommitProperties(
        app_transactions=[Transaction(app_id=txn_app, version=upload.txn_version)],
        custom_metadata={"ecom_lakehouse.source_file": upload.file_key},
        max_commit_retries=retries,
    )


def merge_batch(
    contract: DatasetContract, lake: Lake, batch: pa.Table, upload: Upload
) -> MergeOutcome:
    """Upsert the upload's rows into the dataset's table on the key, newest wins, exactly once;
    retried from a fresh snapshot when another writer's commit conflicts with this one."""
    loaded_at = datetime.now(UTC)
    return retrying_conflicts(
        lambda: _merge_once(contract, lake, batch, upload, loaded_at),
        f"{contract.name}: {upload.file_key}",
        "nothing of it was written and the file stays in raw/: run it again",
    )


T = TypeVar("T")


def retrying_conflicts(attempt: Callable[[], T], what: str, then: str) -> T:
    """``attempt()``, done again from a fresh look at the table when its commit lost to another
    writer's (with backoff, ``COMMIT_ATTEMPTS`` times at most; then TableBusy saying ``then``)."""
    for number in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return attempt()
        except CommitFailedError as exc:
            if number == COMMIT_ATTEMPTS:
                raise TableBusy(
                    f"{what}: {COMMIT_ATTEMPTS} attempts to commit each lost to another writer "
                    f"(last: {str(exc).strip()[:200]}); {then}"
                ) from exc
            time.sleep(min(5.0, 0.1 * 2 ** (number - 1)) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


def _merge_once(
    contract: DatasetContract, lake: Lake, batch: pa.Table, upload: Upload, loaded_at: datetime
) -> MergeOutcome:
    uri, storage_options = lake.url(layout.table_path(contract.name)), lake.storage_options()
    table = open_or_create(contract, uri, storage_options)
    txn_app = upload.txn_app_id(contract.name)
    committed = table.transaction_version(txn_app)
    if committed is not None and committed >= upload.txn_version:
        return MergeOutcome(0, 0, 0, table.version(), already_committed=True)
    where = locate_keys(lake, table, contract, batch) if batch.num_rows else None
    if where and where.absent:
        # No key can match: the MERGE's result would be an append, which costs a fraction of
        # it. The append commits against the snapshot it looked at (no automatic retry): if
        # another writer committed meanwhile, it fails here and the next attempt looks again.
        rows = audited_batches(contract, batch, upload, loaded_at)
        write_deltalake(table, rows, mode="append", commit_properties=_commit(txn_app, upload, 0))
        table.update_incremental()
        return MergeOutcome(batch.num_rows, 0, 0, table.version(), already_committed=False)
    inserted = updated = 0
    if batch.num_rows:
        rows = with_audit(contract, batch, upload, loaded_at)
        # Matching is on the key alone; the literals only prune. The partitions the keys are in
        # prune the most, but a concurrent writer could add a key to another partition, which
        # a conflict check reading those literals would not see: with them, the commit is made
        # against the snapshot they were found in, and any other commit meanwhile means a
        # fresh attempt.
        partitions = where.partitions if where else None
        metrics = (
            table.merge(
                rows,
                predicate=merge_predicate(contract, key_range(contract, rows), partitions),
                source_alias=SOURCE,
                target_alias=TARGET,
                # the source is in memory: planning with it lets the engine prune the target
                streamed_exec=False,
                commit_properties=_commit(txn_app, upload, 0 if partitions else None),
            )
            .when_matched_update_all(predicate=newer_predicate(contract))
            .when_not_matched_insert_all()
            .execute()
        )
        inserted, updated = metrics["num_target_rows_inserted"], metrics["num_target_rows_updated"]
    version = table.version()
    if inserted == 0 and updated == 0:
        # delta-rs skips the commit when nothing changed (every row stale, or none): record the
        # upload's txn anyway so it counts as applied (a commit with no data files).
        version = _commit_txn_only(
            DeltaTable(uri, storage_options=storage_options), txn_app, upload
        )
    return MergeOutcome(
        inserted=inserted,
        updated=updated,
        stale=batch.num_rows - inserted - updated,
        table_version=version,
        already_committed=False,
    )


def _commit_txn_only(table: DeltaTable, txn_app: str, upload: Upload) -> int:
    committed = table.transaction_version(txn_app)
    if committed is not None and committed >= upload.txn_version:
        return table.version()
    table.create_write_transaction(
        actions=[],
        mode="append",
        schema=table.schema(),
        partition_by=table.metadata().partition_columns,
        commit_properties=_commit(txn_app, upload),
    )
    table.update_incremental()
    return table.version()


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
