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

import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Field, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from ecom_lakehouse.contracts import SOURCE_FILE, SOURCE_VERSION, DatasetContract
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.lake.uploads import Upload
from ecom_lakehouse.core.tables.evolution import DELTA_TYPES, TABLE_PROPERTIES, columns_to_add
from ecom_lakehouse.core.tables.key_locations import locate_keys
from ecom_lakehouse.core.tables.merge_spec import (
    SOURCE,
    TARGET,
    KeyRange,
    MergeOutcome,
    merge_predicate,
    newer_predicate,
)
from ecom_lakehouse.core.validate.validation import key_repeats

# What a load's commit says of itself (custom metadata), read back by ``load_history``.
RUN_ID, BATCH_ID, BATCH_ROWS = (
    "ecom_lakehouse.run_id",
    "ecom_lakehouse.batch_id",
    "ecom_lakehouse.rows",
)

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


def set_missing_properties(table: DeltaTable) -> None:
    configured = table.metadata().configuration
    missing = {k: v for k, v in TABLE_PROPERTIES.items() if configured.get(k) != v}
    if missing:
        table.alter.set_table_properties(missing)
        table.update_incremental()


def add_missing_columns(table: DeltaTable, contract: DatasetContract) -> None:
    """Columns of the contract (or audit columns) the table does not have yet are added, as
    nullable columns (metadata only: rows written before read NULL there); a column whose type
    the contract changed is refused (``core/tables/evolution.py``)."""
    present = {
        f["name"]: DELTA_TYPES.get(f["type"], f["type"])
        for f in json.loads(table.schema().to_json())["fields"]
        if isinstance(f["type"], str)  # the contract has no nested types
    }
    missing = columns_to_add(
        contract.name,
        contract.table_columns,
        present,
        lambda: bool(table.file_uris()),
    )
    if missing:
        table.alter.add_columns([Field.from_arrow(c.arrow_field()) for c in missing])
        table.update_incremental()


def with_every_validated_column(contract: DatasetContract, rows: pa.Table) -> pa.Table:
    """Rows validated before the contract gained a column (an older batch re-run) read NULL
    there, as the table's older rows do."""
    for field in contract.arrow_schema:
        if field.name not in rows.column_names:
            rows = rows.append_column(field, pa.nulls(rows.num_rows, field.type))
    return rows


def with_source(contract: DatasetContract, batch: pa.Table, upload: Upload) -> pa.Table:
    """One upload's rows, with where they came from (the file and the upload's version)."""
    rows = batch.select(list(contract.validated_column_names)).cast(contract.arrow_schema)
    rows = rows.append_column(SOURCE_FILE, pa.repeat(upload.file_key, rows.num_rows))
    version = pa.repeat(pa.scalar(upload.version, pa.int64()), rows.num_rows)
    return rows.append_column(SOURCE_VERSION, version)


AUDIT_CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class BatchRows:
    """A batch's rows (each with its ``_source_file`` and ``_source_version``): in memory, or
    a local Parquet file read whole only when the merge needs every row at once. An append,
    the load of keys the table lacks, streams the file in slices: the rows are never all in
    memory beside the writer's own buffers (at 2M rows that whole copy was ~200 MB)."""

    contract: DatasetContract
    source: pa.Table | Path

    @cached_property
    def num_rows(self) -> int:
        if isinstance(self.source, pa.Table):
            return self.source.num_rows
        return pq.ParquetFile(self.source).metadata.num_rows

    def columns(self, names: Sequence[str]) -> pa.Table:
        """Only these columns (read from the file alone)."""
        if isinstance(self.source, pa.Table):
            return self.whole().select(list(names))
        present = set(pq.read_schema(self.source).names)
        read = pq.read_table(self.source, columns=[n for n in names if n in present])
        types = self.contract.arrow_schema
        for name in (n for n in names if n not in present):  # a column the contract gained
            read = read.append_column(
                types.field(name), pa.nulls(read.num_rows, types.field(name).type)
            )
        return read.select(list(names))

    def whole(self) -> pa.Table:
        rows = self.source if isinstance(self.source, pa.Table) else pq.read_table(self.source)
        return with_every_validated_column(self.contract, rows)

    def slices(self) -> Iterator[pa.Table]:
        if isinstance(self.source, pa.Table):
            yield from (
                pa.Table.from_batches([b]) for b in self.whole().to_batches(AUDIT_CHUNK_ROWS)
            )
            return
        for batch in pq.ParquetFile(self.source).iter_batches(batch_size=AUDIT_CHUNK_ROWS):
            yield with_every_validated_column(self.contract, pa.Table.from_batches([batch]))


def loaded_batches(
    contract: DatasetContract, rows: BatchRows | pa.Table, loaded_at: datetime
) -> pa.RecordBatchReader:
    """Rows (with their source columns) in the table's schema, a chunk at a time, ``_loaded_at``
    added as each chunk is written, the file key dictionary-encoded (the table stores text):
    delta-rs holds a partition's rows until it writes its file, and a file key repeated on
    every row costs ~25 MB at 650,000 rows."""
    source = contract.table_schema.get_field_index(SOURCE_FILE)
    schema = contract.table_schema.set(
        source, pa.field(SOURCE_FILE, pa.dictionary(pa.int32(), pa.string()))
    )
    moment = pa.scalar(loaded_at, pa.timestamp("us", tz="UTC"))
    names = [*contract.validated_column_names, SOURCE_FILE, SOURCE_VERSION]
    selected = pa.schema([schema.field(n) for n in names])
    batch = rows if isinstance(rows, BatchRows) else BatchRows(contract, rows)

    def chunks() -> Iterator[pa.RecordBatch]:
        for piece in batch.slices():
            for chunk in piece.select(names).cast(selected).to_batches():
                columns = [*chunk.columns, pa.repeat(moment, chunk.num_rows)]
                yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, chunks())


def newest_per_key(contract: DatasetContract, rows: pa.Table) -> pa.Table:
    """One row per key across the files of a batch: the newest by the contract's sequence,
    then the upload's version, then the file (what the MERGE's condition would keep)."""
    key = contract.key_columns
    if not key_repeats(rows, key):
        return rows
    newest = [c for c in (*contract.sequence_by, SOURCE_VERSION) if c not in key]
    order = [(c, "ascending", "at_end") for c in key]
    order += [(c, "descending", "at_end") for c in newest]
    order += [(SOURCE_FILE, "descending", "at_end")]
    # sorted on the ordering columns alone, the file key as text (Arrow does not sort a
    # dictionary column); then the rows are taken in that order
    names = [name for name, *_ in order]
    keys = rows.select(names[:-1]).append_column(
        SOURCE_FILE, rows.column(SOURCE_FILE).cast(pa.string())
    )
    ordered = rows.take(pc.sort_indices(keys, sort_keys=order))
    first = pa.array([False] * (ordered.num_rows - 1), pa.bool_())
    for name in key:  # a row starts a key where any key column differs from the row before
        values = ordered.column(name).combine_chunks()
        differs = pc.not_equal(values.slice(1), values.slice(0, len(values) - 1))
        first = pc.or_(first, differs.fill_null(True))
    return ordered.filter(pa.concat_arrays([pa.array([True]), first]))


def key_range(contract: DatasetContract, batch: pa.Table) -> KeyRange | None:
    """The batch's key range, for keys whose file statistics are exact (numbers, dates): the
    MERGE spells it out so the engine skips every file outside it."""
    key = batch.column(contract.key_columns[0])  # a composite key: its first column prunes
    exact = pa.types.is_integer(key.type) or pa.types.is_date(key.type)
    if not exact or key.null_count == len(key) or not len(key):
        return None
    bounds = pc.min_max(key)
    return KeyRange(bounds["min"].as_py(), bounds["max"].as_py())


@dataclass(frozen=True)
class CommitNote:
    """What a load's commit says of itself beside its uploads (``load_history`` reads it back
    from the log): the run, its validated batch, the rows it merged."""

    run_id: str = ""
    batch_id: str = ""


def _commit(
    contract: DatasetContract,
    uploads: Sequence[Upload],
    retries: int | None = None,
    note: CommitNote = CommitNote(),
    rows: int | None = None,
) -> CommitProperties:
    """Every upload of the batch recorded in the commit that writes its rows."""
    said = {RUN_ID: note.run_id, BATCH_ID: note.batch_id, BATCH_ROWS: rows}
    return CommitProperties(
        app_transactions=[
            Transaction(app_id=u.txn_app_id(contract.name), version=u.txn_version) for u in uploads
        ],
        custom_metadata={
            "ecom_lakehouse.source_files": ", ".join(u.file_key for u in uploads),
            **{k: str(v) for k, v in said.items() if v not in ("", None)},
        },
        max_commit_retries=retries,
    )


def merge_upload(
    contract: DatasetContract, lake: Lake, batch: pa.Table, upload: Upload
) -> MergeOutcome:
    """One upload's rows (``merge_batch`` for a batch of one)."""
    return merge_batch(contract, lake, with_source(contract, batch, upload), [upload])


def merge_batch(
    contract: DatasetContract,
    lake: Lake,
    rows: pa.Table | Path,
    uploads: Sequence[Upload],
    note: CommitNote = CommitNote(),
) -> MergeOutcome:
    """Upsert the rows of a batch of uploads (each row with its ``_source_file`` and
    ``_source_version``; a table, or a local Parquet file of them) into the dataset's table on
    the key, newest wins, exactly once per upload, in one commit; retried from a fresh snapshot
    when another writer's commit conflicts with this one."""
    loaded_at = datetime.now(UTC)
    files = ", ".join(u.file_key for u in uploads[:3]) + (" ..." if len(uploads) > 3 else "")
    return retrying_conflicts(
        lambda: _merge_once(
            contract, lake, BatchRows(contract, rows), uploads, loaded_at, note=note
        ),
        f"{contract.name}: {files}",
        "nothing of it was written and the files stay in raw/: run them again",
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
    contract: DatasetContract,
    lake: Lake,
    rows: BatchRows,
    uploads: Sequence[Upload],
    loaded_at: datetime,
    *,
    note: CommitNote,
) -> MergeOutcome:
    uri, storage_options = lake.url(layout.table_path(contract.name)), lake.storage_options()
    table = open_or_create(contract, uri, storage_options)
    committed = [_committed(table, contract, u) for u in uploads]
    committed_before = [u for u, applied in zip(uploads, committed, strict=True) if applied]
    pending = [u for u, applied in zip(uploads, committed, strict=True) if not applied]
    if not pending:
        return MergeOutcome(0, 0, 0, table.version(), tuple(u.file_key for u in committed_before))
    if committed_before:  # a replayed upload's rows are not written again
        whole = rows.whole()
        fresh = pc.invert(
            pc.is_in(whole.column(SOURCE_FILE), pa.array([u.file_key for u in committed_before]))
        )
        rows = BatchRows(contract, whole.filter(fresh))
    batch, keys = _one_per_key(contract, rows)
    superseded = rows.num_rows - batch.num_rows  # older versions of a key in the same batch
    already = tuple(u.file_key for u in committed_before)
    where = locate_keys(lake, table, contract, keys) if batch.num_rows else None
    if where and where.absent:
        # No key can match: the MERGE's result would be an append, which costs a fraction of
        # it. The append commits against the snapshot it looked at (no automatic retry): if
        # another writer committed meanwhile, it fails here and the next attempt looks again.
        write_deltalake(
            table,
            loaded_batches(contract, batch, loaded_at),
            mode="append",
            commit_properties=_commit(contract, pending, 0, note, rows.num_rows),
        )
        table.update_incremental()
        return MergeOutcome(batch.num_rows, 0, superseded, table.version(), already)
    inserted = updated = 0
    if batch.num_rows:
        source = loaded_batches(contract, batch, loaded_at).read_all().cast(contract.table_schema)
        # Matching is on the key alone; the literals only prune. The partitions the keys are in
        # prune the most, but a concurrent writer could add a key to another partition, which
        # a conflict check reading those literals would not see: with them, the commit is made
        # against the snapshot they were found in, and any other commit meanwhile means a
        # fresh attempt.
        partitions = where.partitions if where else None
        metrics = (
            table.merge(
                source,
                predicate=merge_predicate(contract, key_range(contract, keys), partitions),
                source_alias=SOURCE,
                target_alias=TARGET,
                # the source is in memory: planning with it lets the engine prune the target
                streamed_exec=False,
                commit_properties=_commit(
                    contract, pending, 0 if partitions else None, note, rows.num_rows
                ),
            )
            .when_matched_update_all(predicate=newer_predicate(contract))
            .when_not_matched_insert_all()
            .execute()
        )
        inserted, updated = metrics["num_target_rows_inserted"], metrics["num_target_rows_updated"]
    version = table.version()
    if inserted == 0 and updated == 0:
        # delta-rs skips the commit when nothing changed (every row stale, or none): record the
        # uploads' txns anyway so they count as applied (a commit with no data files).
        fresh_table = DeltaTable(uri, storage_options=storage_options)
        version = _commit_txn_only(fresh_table, contract, pending, note, rows.num_rows)
    stale = rows.num_rows - inserted - updated
    return MergeOutcome(inserted, updated, stale, version, already)


def _one_per_key(contract: DatasetContract, rows: BatchRows) -> tuple[BatchRows, pa.Table]:
    """The batch's rows, one per key (the newest), and the columns that find its keys in the
    table (read first, without the rest: a batch without a repeated key is not read whole)."""
    narrow = dict.fromkeys(
        [*contract.key_columns, *contract.sequence_by, SOURCE_FILE, SOURCE_VERSION]
        + ([contract.partition_by] if contract.partition_by else [])
    )
    keys = rows.columns(list(narrow))
    if not key_repeats(keys, contract.key_columns):
        return rows, keys
    batch = BatchRows(contract, newest_per_key(contract, rows.whole()))
    return batch, batch.columns(list(narrow))


def _committed(table: DeltaTable, contract: DatasetContract, upload: Upload) -> bool:
    version = table.transaction_version(upload.txn_app_id(contract.name))
    return version is not None and version >= upload.txn_version


def _commit_txn_only(
    table: DeltaTable,
    contract: DatasetContract,
    uploads: list[Upload],
    note: CommitNote,
    rows: int,
) -> int:
    pending = [u for u in uploads if not _committed(table, contract, u)]
    if not pending:
        return table.version()
    return commit_transactions_only(table, _commit(contract, pending, None, note, rows))


def commit_transactions_only(table: DeltaTable, properties: CommitProperties) -> int:
    """A commit of no data that records the application transactions in ``properties`` (what
    was applied, when applying it changed no row); the table's new version."""
    table.create_write_transaction(
        actions=[],
        mode="append",
        schema=table.schema(),
        partition_by=table.metadata().partition_columns,
        commit_properties=properties,
    )
    table.update_incremental()
    return table.version()


def table_exists(uri: str, storage_options: dict[str, str]) -> bool:
    return DeltaTable.is_deltatable(uri, storage_options=storage_options)


def lake_has_table(lake: Lake, name: str) -> bool:
    """Whether the table ``name`` has a Delta table under ``processed/`` yet."""
    return table_exists(lake.url(layout.table_path(name)), lake.storage_options())


def table_row_count(uri: str, storage_options: dict[str, str]) -> int | None:
    """Rows in the table from the log's file statistics (no data is read)."""
    try:
        table = DeltaTable(uri, storage_options=storage_options)
    except TableNotFoundError:
        return None
    actions = pa.table(table.get_add_actions(flatten=True))
    return int(pc.sum(actions.column("num_records")).as_py() or 0)
