"""``load_history``: one row per upload attempt, a Delta table under ``processed/``.

Each run records what it decided: files rejected whole and files skipped (validation), files
whose load failed (the merge), and the uploads its commit loaded. The loaded rows come from
the dataset table's own log: every commit names its uploads (their exactly-once ``txn``), so
after a commit the run records every upload the log holds beyond what the history has seen,
its own and any a crashed run committed but never recorded. Each loaded row is written with a
``txn`` of its own in the history table, so an upload delivery is recorded once however many
runs fill the same gap at once (Delta refuses two commits of one application transaction).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import get_args

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.contracts.history import FAILED, LOAD_HISTORY, LOADED
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.lake.uploads import Upload
from ecom_lakehouse.core.tables.delta import (
    BATCH_ID,
    BATCH_ROWS,
    RUN_ID,
    commit_transactions_only,
    retrying_conflicts,
)

LOG_READS = 16  # log entries read at once when a gap is filled (the first run on an old table)


def moment(ms: int | None) -> datetime | None:
    """A time in ms since 1970 (UTC), as a datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None


@dataclass(frozen=True)
class Attempt:
    """One row of ``load_history`` (its columns: ``contracts/history.py``)."""

    dataset: str
    file: str
    etag: str
    landed_at: datetime | None
    status: str
    loaded_at: datetime
    rows_read: int | None = None
    rows_rejected: int | None = None
    rows_inserted: int | None = None
    rows_updated: int | None = None
    rows_stale: int | None = None
    files_in_commit: int | None = None
    reason: str | None = None
    run_id: str | None = None
    table_version: int | None = None
    source_key: str | None = None

    @classmethod
    def of(cls, dataset: str, upload: Upload, status: str, **more: object) -> Attempt:
        return cls(
            dataset,
            upload.file_key,
            upload.etag,
            moment(upload.version),
            status,
            more.pop("loaded_at", None) or datetime.now(UTC),  # type: ignore[arg-type]
            source_key=upload.source_key or layout.raw_key(upload.file_key),
            **more,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class FileCounts:
    """What validation counted of one upload (kept in its batch's manifest for the history)."""

    rows_read: int
    rows_rejected: int


def history_uri(lake: Lake) -> str:
    return lake.url(layout.table_path(LOAD_HISTORY.name))


def _open(lake: Lake) -> DeltaTable | None:
    try:
        return DeltaTable(history_uri(lake), storage_options=lake.storage_options())
    except TableNotFoundError:
        return None


def _create(lake: Lake) -> DeltaTable:
    # mode="ignore": when two writers race to create it, both end with the same table
    DeltaTable.create(
        history_uri(lake),
        schema=LOAD_HISTORY.table_schema,
        partition_by=[LOAD_HISTORY.partition_by] if LOAD_HISTORY.partition_by else None,
        name=LOAD_HISTORY.name,
        description=LOAD_HISTORY.description,
        mode="ignore",
        storage_options=lake.storage_options(),
    )
    return DeltaTable(history_uri(lake), storage_options=lake.storage_options())


def _write(
    lake: Lake, table: DeltaTable, attempts: Sequence[Attempt], txns: Sequence[Transaction] = ()
) -> None:
    """One commit: the attempts' rows, with ``txns`` (a commit of no rows when there are none)."""
    properties = CommitProperties(app_transactions=list(txns) or None)
    if not attempts:
        commit_transactions_only(table, properties)
        return
    rows = pa.Table.from_pylist([asdict(a) for a in attempts], schema=LOAD_HISTORY.table_schema)
    write_deltalake(table, rows, mode="append", commit_properties=properties)


def record(lake: Lake, attempts: Sequence[Attempt]) -> int:
    """Append attempts that are not loads (rejected, skipped, failed): each is an attempt of
    its own, recorded as it happens. Returns how many."""
    if attempts:
        retrying_conflicts(
            lambda: _write(lake, _open(lake) or _create(lake), attempts),
            f"{LOAD_HISTORY.name}: {len(attempts)} attempt(s)",
            "they are not recorded",
        )
    return len(attempts)


def _upload_app(dataset: str, file_key: str, etag: str) -> str:
    return f"ecom-lakehouse/{LOAD_HISTORY.name}/{dataset}/{file_key}@{etag}"


def _examined_app(dataset: str) -> str:
    """The history's note of how far it has read the dataset table's log."""
    return f"ecom-lakehouse/{LOAD_HISTORY.name}/{dataset}"


@dataclass(frozen=True)
class LoggedCommit:
    """A commit of a dataset's table, as its log entry tells it."""

    version: int
    timestamp: datetime | None
    uploads: tuple[tuple[str, str, int], ...]  # (file, etag, txn version)
    info: Mapping[str, object] = field(default_factory=dict)

    def rows(self) -> tuple[int | None, int | None, int | None]:
        """Rows the commit inserted, updated and kept back as stale (delta-rs or Spark)."""
        metrics: Mapping[str, object] = self.info.get("operationMetrics") or {}  # type: ignore[assignment]

        def metric(*names: str) -> int | None:
            return next((int(str(metrics[n])) for n in names if n in metrics), None)

        inserted = metric("num_target_rows_inserted", "numTargetRowsInserted", "num_added_rows")
        updated = metric("num_target_rows_updated", "numTargetRowsUpdated") or 0
        inserted = inserted or 0
        source = self.info.get(BATCH_ROWS)
        source_rows = (
            int(str(source)) if source is not None else metric("num_source_rows", "numSourceRows")
        )
        stale = source_rows - inserted - updated if source_rows is not None else None
        return inserted, updated, stale


def _read_log_entry(lake: Lake, dataset: str, version: int) -> LoggedCommit | None:
    key = f"{layout.table_path(dataset)}/_delta_log/{version:020d}.json"
    try:
        data, _ = lake.read(key)
    except FileNotFoundError:  # cleaned up after a checkpoint: its loads are beyond reach
        return None
    prefix = f"ecom-lakehouse/{dataset}/"
    uploads, info = [], {}
    for line in data.decode().splitlines():
        action = json.loads(line) if line.strip() else {}
        if "txn" in action and action["txn"]["appId"].startswith(prefix):
            file_key, _, etag = action["txn"]["appId"].removeprefix(prefix).rpartition("@")
            uploads.append((file_key, etag, int(action["txn"]["version"])))
        elif "commitInfo" in action:
            info = action["commitInfo"]
            user = info.get("userMetadata")  # what the Spark job says of its commits
            if isinstance(user, str) and user.startswith("{"):
                info = {**info, **json.loads(user)}
    stamp = info.get("timestamp")
    return LoggedCommit(version, moment(int(stamp)) if stamp else None, tuple(uploads), info)


def record_loads(
    lake: Lake,
    dataset: str,
    through_version: int,
    *,
    run_id: str,
    known: Mapping[tuple[str, str], tuple[Upload, FileCounts | None]],
    also: Sequence[Attempt] = (),
) -> int:
    """Record every upload the dataset table committed up to ``through_version`` that the
    history has not (``known``: this run's uploads by file and ETag, with their counts), and
    ``also`` (this run's other attempts) in the same commit. Returns the rows recorded."""

    def attempt() -> int:
        table = _open(lake) or _create(lake)
        examined = table.transaction_version(_examined_app(dataset))
        start = -1 if examined is None else examined
        versions = range(start + 1, through_version + 1)
        with ThreadPoolExecutor(max_workers=LOG_READS) as pool:
            commits = [
                c for c in pool.map(lambda v: _read_log_entry(lake, dataset, v), versions) if c
            ]
        attempts = list(also)
        recorded: dict[str, int] = {}  # app id -> the newest delivery recorded in this walk
        manifests: dict[str, dict[tuple[str, str], tuple[Upload, FileCounts | None]]] = {}
        for commit in commits:
            inserted, updated, stale = commit.rows()
            for file_key, etag, txn_version in commit.uploads:
                app = _upload_app(dataset, file_key, etag)
                seen = recorded.get(app, table.transaction_version(app))
                if seen is not None and seen >= txn_version:
                    continue
                batch = str(commit.info.get(BATCH_ID) or "")
                if batch and batch not in manifests:
                    manifests[batch] = read_manifest(lake, dataset, batch)
                upload, counts = (
                    known.get((file_key, etag))
                    or manifests.get(batch, {}).get((file_key, etag))
                    or (Upload(file_key, etag, txn_version), None)
                )
                mine = upload.txn_version == txn_version and (file_key, etag) in known
                attempts.append(
                    Attempt.of(
                        dataset,
                        upload,
                        LOADED,
                        loaded_at=commit.timestamp,
                        rows_read=counts.rows_read if counts else None,
                        rows_rejected=counts.rows_rejected if counts else None,
                        rows_inserted=inserted,
                        rows_updated=updated,
                        rows_stale=stale,
                        files_in_commit=len(commit.uploads),
                        run_id=run_id if mine else str(commit.info.get(RUN_ID) or "") or None,
                        table_version=commit.version,
                    )
                )
                recorded[app] = txn_version
        # one txn per app id in a commit: a re-delivered upload's newest delivery
        txns = [Transaction(app, version) for app, version in recorded.items()]
        if start < through_version:
            txns.append(Transaction(_examined_app(dataset), through_version))
        if attempts or txns:
            _write(lake, table, attempts, txns)
        return len(attempts)

    return retrying_conflicts(attempt, f"{LOAD_HISTORY.name}: {dataset}", "the next run records it")


def manifest_line(upload: Upload, counts: FileCounts) -> str:
    """One upload of a validated batch's manifest, with what validation counted of it."""
    return json.dumps({**upload.as_dict(), **asdict(counts)}) + "\n"


def read_manifest(
    lake: Lake, dataset: str, batch_id: str
) -> dict[tuple[str, str], tuple[Upload, FileCounts | None]]:
    """A validated batch's uploads with their counts, by file and ETag ({} when it is gone)."""
    try:
        data, _ = lake.read(layout.batch_manifest_key(dataset, batch_id))
    except FileNotFoundError:
        return {}
    entries = {}
    for line in data.decode().splitlines():
        if line:
            fields = json.loads(line)
            upload = Upload.from_dict(fields)
            counts = (
                FileCounts(fields["rows_read"], fields["rows_rejected"])
                if "rows_read" in fields
                else None
            )
            entries[(upload.file_key, upload.etag)] = (upload, counts)
    return entries


def failed(dataset: str, uploads: Iterable[Upload], reason: str, run_id: str) -> list[Attempt]:
    return [Attempt.of(dataset, u, FAILED, reason=reason, run_id=run_id) for u in uploads]


def files_landed_on(lake: Lake, contract: DatasetContract, day: date) -> list[str]:
    """Every file of the dataset whose upload landed on ``day`` (UTC), wherever it is now, in
    landing order: waiting in ``raw/``, rejected (its reason records its landing), or recorded
    by the history (loaded and archived, or any other attempt)."""
    start = datetime.combine(day, time(), UTC)
    end = start + timedelta(days=1)
    landed: dict[str, datetime] = {}
    for info in lake.list(layout.raw_key(contract.raw_folder + "/")):
        if start <= info.last_modified < end and layout.is_landing_file(info.key):
            landed[layout.file_key(info.key)] = info.last_modified
    for kind in get_args(layout.FileRejection):
        for info in lake.list(layout.rejected_file_key(kind, contract.raw_folder + "/")):
            if info.key.endswith(layout.reason_key("")) or info.last_modified < start:
                continue  # a file is rejected after it landed
            try:
                reason = json.loads(lake.read(layout.reason_key(info.key))[0])
            except FileNotFoundError:
                continue
            at = moment(reason.get("version"))
            if at is not None and start <= at < end:
                landed.setdefault(reason["file"], at)
    rows = attempts_of(
        lake, contract.name, ["file", "landed_at"], when="landed_at", start=start, end=end
    )
    if rows is not None:
        for file_key, at in zip(
            rows.column("file").to_pylist(), rows.column("landed_at").to_pylist(), strict=True
        ):
            landed.setdefault(file_key, at)
    return sorted(landed, key=lambda f: (landed[f], f))


def attempts_of(
    lake: Lake,
    dataset: str,
    columns: list[str],
    *,
    when: str,
    start: datetime,
    end: datetime | None = None,
) -> pa.Table | None:
    """The dataset's attempts whose ``when`` column falls in [start, end) (None: no history)."""
    import pyarrow.dataset as pds  # here: it imports pandas, which a load never needs

    table = _open(lake)
    if table is None:
        return None
    window = pds.field(when) >= start
    if end is not None:
        window &= pds.field(when) < end
    partition = [(LOAD_HISTORY.partition_by or "dataset", "=", dataset)]
    return table.to_pyarrow_dataset(partitions=partition).to_table(columns=columns, filter=window)
