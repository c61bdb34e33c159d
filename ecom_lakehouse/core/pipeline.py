"""The three steps landed files go through, as plain functions over the lake, a batch of files
at a time (one file is a batch of one).

validate -> merge -> archive. Each file keeps its own identity (its upload), its own rejects
and reason, its own exactly-once record and its own archive move; the batch shares one pass of
the checks, one file of validated rows and one Delta commit. The Dagster assets are thin
wrappers around these; keeping the steps free of Dagster lets the benchmarks and the Spark job
reuse them as they are.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ecom_lakehouse.contracts import SOURCE_FILE, SOURCE_VERSION, DatasetContract
from ecom_lakehouse.contracts.history import REJECTED, SKIPPED
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.memory import release_freed_memory
from ecom_lakehouse.core.lake.storage import Lake, ObjectChanged, ObjectInfo
from ecom_lakehouse.core.lake.uploads import Upload, millis
from ecom_lakehouse.core.read.readers import (
    NO_LIMITS,
    FileTooLarge,
    RawPart,
    ReadLimits,
    Source,
    UnreadableFile,
    check_limits,
    detect_format,
    iter_parts,
)
from ecom_lakehouse.core.tables.delta import CommitNote, merge_batch
from ecom_lakehouse.core.tables.history import Attempt, FileCounts, manifest_line
from ecom_lakehouse.core.tables.merge_spec import MergeOutcome
from ecom_lakehouse.core.validate.validation import (
    FILE_INDEX,
    FileCheck,
    InvalidSchema,
    validate_files,
)


class FileRejected(Exception):
    """The whole file was rejected and moved under ``rejected/``."""

    def __init__(
        self, kind: layout.FileRejection, reason: str, rejected_key: str, upload: Upload
    ) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.rejected_key = rejected_key
        self.upload = upload  # the upload that was rejected


class FileSkipped(Exception):
    """The upload a run was started for is not there to take: another writer loaded it
    (archived) or rejected it, a newer upload replaced it, or it was removed. Nothing is left
    to do for it: the run says where the file is now and goes on."""

    def __init__(self, file_key: str, reason: str, now_at: str = "") -> None:
        super().__init__(f"{file_key}: {reason}" + (f" (now {now_at})" if now_at else ""))
        self.reason = reason
        self.now_at = now_at


@dataclass(frozen=True)
class Delivery:
    """How a run takes its files: the uploads the sensor started it for (``etags``: file ->
    ETag; one found taken by another writer is skipped), a re-execution of an earlier attempt
    (``retry``: its uploads as they were), or, with neither, a re-process of each file from
    wherever it is now."""

    etags: Mapping[str, str] = field(default_factory=dict)
    retry: bool = False


@dataclass
class FileValidation:
    """What validation made of one file of a batch."""

    file_key: str
    upload: Upload | None = None  # None: the file was skipped, or rejected whole
    source: ObjectInfo | None = None
    format: str | None = None
    check: FileCheck | None = None  # its rows' counts and rejected rows
    rejection: FileRejected | None = None  # rejected whole, and moved under rejected/
    skipped: FileSkipped | None = None  # not there to take: why, and where it is now
    rejected_records_key: str | None = None

    @property
    def counts(self) -> FileCounts:
        check = self.check
        rejected = check.rejected.num_rows if check and check.rejected is not None else 0
        return FileCounts(check.rows_read if check else 0, rejected)


@dataclass
class ValidatedBatch:
    key: str  # the validated rows of every accepted file of the batch (typed Parquet)
    files: list[FileValidation] = field(default_factory=list)

    @property
    def uploads(self) -> list[Upload]:
        return [f.upload for f in self.files if f.upload is not None]


def locate_source(
    lake: Lake,
    file_key: str,
    listed: dict[str, ObjectInfo] | None = None,
    delivery: Delivery = Delivery(),
) -> tuple[ObjectInfo, Upload]:
    """Where the file is, and the upload it is, wherever it is now.

    A run started for an upload (its ETag in ``delivery``: the sensor saw it) takes it from
    ``raw/``; finding it archived or rejected by another writer, or replaced by a newer upload,
    it has nothing to do: ``FileSkipped`` says where the file went. A retry takes its upload as
    it was, which the table may already have. Any other run re-processes the file from where
    it is (``raw/``, ``archived/`` or ``rejected/``): a new delivery of the upload it was,
    applied once more. ``listed``: a listing of the file's raw folder, to save a look."""
    expected_etag = delivery.etags.get(file_key)
    info = listed.get(file_key) if listed is not None else lake.head(layout.raw_key(file_key))
    if info is not None:
        if expected_etag is not None and info.etag != expected_etag:
            raise FileSkipped(file_key, REPLACED, info.key)
        return info, Upload.of(info)
    taken_elsewhere = expected_etag is not None or delivery.retry
    archived = layout.archived_key(file_key)
    info = lake.head(archived)
    if info is not None:
        record = lake.head(layout.upload_record_key(archived))
        if record is None:  # a renamed file (or archived before records were kept) is its upload
            upload = Upload(file_key, info.etag, millis(info.last_modified))
        else:
            upload = Upload.from_record(lake.read(record.key)[0])
        if delivery.retry:
            return info, upload
        if expected_etag is not None:
            why = "already loaded by another run" if upload.etag == expected_etag else REPLACED
            raise FileSkipped(file_key, why, archived)
        return info, upload.redelivered(datetime.now(UTC), archived)
    for kind in get_args(layout.FileRejection):
        rejected = layout.rejected_file_key(kind, file_key)
        info = lake.head(rejected)
        if info is None:
            continue
        detail = json.loads(lake.read(layout.reason_key(rejected))[0])
        if taken_elsewhere:
            why = f"already rejected ({kind}): {detail.get('reason', '')}"
            raise FileSkipped(file_key, why, rejected)
        version = int(detail.get("version") or millis(info.last_modified))
        upload = Upload(file_key, info.etag, version)
        return info, upload.redelivered(datetime.now(UTC), rejected)
    raise FileSkipped(
        file_key, f"gone: in none of {layout.RAW}, {layout.ARCHIVED} or {layout.REJECTED}"
    )


REPLACED = "a newer upload replaced it, and is taken by a run of its own"


def reject_file(
    lake: Lake, source: ObjectInfo, upload: Upload, kind: layout.FileRejection, reason: str
) -> FileRejected:
    """Move the whole file under ``rejected/<kind>/`` with a JSON reason beside it. The reason
    is written first, so a rejected file is never found without one. A file re-processed from
    ``rejected/`` and rejected again keeps one place and one reason."""
    file_key = upload.file_key
    target = layout.rejected_file_key(kind, file_key)
    detail = {
        "file": file_key,
        "source_key": source.key,
        "etag": source.etag,
        "version": upload.version,  # when it landed: a re-process keeps newest-wins honest
        "rejection": kind,
        "reason": reason,
        "rejected_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    lake.write(layout.reason_key(target), json.dumps(detail, indent=2).encode())
    if source.key == target:
        return FileRejected(kind, reason, target, upload)
    try:
        lake.move(source.key, target, expected_etag=source.etag)
    except FileNotFoundError:
        if lake.head(target) is None:  # not rejected by another run: gone some other way
            raise
    except ObjectChanged:  # a new upload replaced it: that one has a run of its own
        lake.delete(layout.reason_key(target))
        raise FileSkipped(file_key, REPLACED, source.key) from None
    if source.key.startswith(layout.REJECTED):  # rejected before for another reason
        with contextlib.suppress(FileNotFoundError):
            lake.delete(layout.reason_key(source.key))
    return FileRejected(kind, reason, target, upload)


def validate_batch(
    lake: Lake,
    contract: DatasetContract,
    file_keys: Sequence[str],
    batch_id: str,
    delivery: Delivery = Delivery(),
    *,
    limits: ReadLimits = NO_LIMITS,
) -> ValidatedBatch:
    """Read and check the files together (one pass of the checks however many there are); move
    each file that cannot be read or whose header is wrong under ``rejected/`` with its
    reason; write each file's rejected rows, and the accepted files' good rows, with where each
    came from, as one typed Parquet file for the merge. One bad file holds back no other.
    ``delivery``: how the run takes its files (see ``Delivery``); a file past ``limits`` is
    rejected whole before it is read. When no file is left to load, nothing is written for
    the merge."""
    release_freed_memory()  # what earlier files' steps freed, before this one allocates
    batch = ValidatedBatch(layout.validated_batch_key(contract.name, batch_id))
    by_key = {k: FileValidation(k) for k in dict.fromkeys(file_keys)}
    batch.files = list(by_key.values())
    listed = _listing(lake, contract)
    with _scratch() as scratch:
        found = _readable(
            lake, contract, batch.files, listed, scratch, delivery=delivery, limits=limits
        )
        checked = validate_files(contract, found)
        for check in checked.files:
            file = by_key[check.file_key]
            file.check = check
            if isinstance(check.error, InvalidSchema | UnreadableFile):
                kind: layout.FileRejection = (
                    "invalid_schema" if isinstance(check.error, InvalidSchema) else "unreadable"
                )
                _reject(lake, file, kind, str(check.error))
        accepted = [f for f in batch.files if f.upload is not None]
        _write_rejected_rows(lake, contract, accepted, scratch)
        if not accepted:  # nothing for the merge (and nothing of an earlier attempt either)
            with contextlib.suppress(FileNotFoundError):
                lake.delete(layout.batch_manifest_key(contract.name, batch_id))
            return batch
        rows = _stamped(checked.valid, [by_key[c.file_key] for c in checked.files])
        # read once by the merge, then deleted: written fast rather than small (snappy, which
        # Spark reads too, writes and reads 2M rows in 0.24 s; zstd took 0.32 s at half the size)
        _write_parquet(lake, batch.key, rows, scratch, compression="snappy")
    # After the rows: a manifest is only ever found beside the rows it describes.
    manifest = "".join(manifest_line(f.upload, f.counts) for f in accepted if f.upload)
    lake.write(layout.batch_manifest_key(contract.name, batch_id), manifest.encode())
    return batch


def _listing(lake: Lake, contract: DatasetContract) -> dict[str, ObjectInfo]:
    """What is in the dataset's raw folder now (one listing, instead of a look per file)."""
    prefix = layout.raw_key(contract.raw_folder + "/")
    return {layout.file_key(info.key): info for info in lake.list(prefix)}


def _readable(
    lake: Lake,
    contract: DatasetContract,
    files: list[FileValidation],
    listed: dict[str, ObjectInfo],
    scratch: Path,
    *,
    delivery: Delivery,
    limits: ReadLimits,
) -> Iterator[tuple[str, Iterator[RawPart]]]:
    """Each file that can be found and has a format the contract takes (fetched ahead: see
    ``_download``), as parts to check; the others are recorded."""
    for file, fetched in _prefetched(lake, files, listed, scratch, delivery):
        fmt = detect_format(file.file_key)
        if isinstance(fetched, FileSkipped):
            file.skipped = fetched
            continue
        local, file.source, upload = fetched
        file.upload, file.format = upload, fmt
        if fmt is None or fmt not in contract.formats:
            accepted = ", ".join(contract.formats)
            why = f"unsupported file type for {contract.name}: accepted formats are {accepted}"
            _reject(lake, file, "unreadable", why)
            _discard(local)
            continue
        try:
            check_limits(local, fmt, limits)
        except FileTooLarge as too_large:
            _reject(lake, file, "too_large", str(too_large))
            _discard(local)
            continue
        yield file.file_key, iter_parts(local, fmt, contract.source_column_names)
        _discard(local)  # read whole before the next file is asked for


PREFETCH = 16  # downloads in flight while a file is read: a store's latency, not its bandwidth


def _prefetched(
    lake: Lake,
    files: list[FileValidation],
    listed: dict[str, ObjectInfo],
    scratch: Path,
    delivery: Delivery,
) -> Iterator[tuple[FileValidation, tuple[Source, ObjectInfo, Upload] | FileSkipped]]:
    """The files downloaded in order, up to ``PREFETCH`` ahead of the reader (each into a
    folder of its own: two files may share a name)."""

    def fetch(index: int, file: FileValidation) -> tuple[Source, ObjectInfo, Upload] | FileSkipped:
        folder = scratch / f"f{index}"  # made only for a file saved to disk
        try:
            return _download(lake, file.file_key, folder, listed, delivery)
        except FileSkipped as skipped:
            return skipped

    with ThreadPoolExecutor(max_workers=PREFETCH) as pool:
        ahead: deque[tuple[FileValidation, Future]] = deque()
        for index, file in enumerate(files):
            ahead.append((file, pool.submit(fetch, index, file)))
            if len(ahead) >= PREFETCH:
                first, future = ahead.popleft()
                yield first, future.result()
        while ahead:
            first, future = ahead.popleft()
            yield first, future.result()


def _reject(lake: Lake, file: FileValidation, kind: layout.FileRejection, reason: str) -> None:
    if file.source is None or file.upload is None:
        raise ValueError(f"{file.file_key}: only a file that was found can be rejected")
    try:
        file.rejection = reject_file(lake, file.source, file.upload, kind, reason)
    except FileSkipped as skipped:
        file.skipped = skipped
    file.upload = None


def _write_rejected_rows(
    lake: Lake, contract: DatasetContract, files: list[FileValidation], scratch: Path
) -> None:
    """Each file's rejected rows beside its dataset's; a re-processed file keeps no rejects of
    an earlier attempt."""
    existing = {info.key for info in lake.list(layout.rejected_records_prefix(contract.name))}
    for file in files:
        rejected = file.check.rejected if file.check is not None else None
        key = layout.rejected_records_key(contract.name, file.file_key)
        if rejected is not None and rejected.num_rows:
            _write_parquet(lake, key, rejected, scratch)
            file.rejected_records_key = key
        elif key in existing:
            with contextlib.suppress(FileNotFoundError):  # another run deleted them first
                lake.delete(key)


def _stamped(valid: pa.Table, files: list[FileValidation]) -> pa.Table:
    """The good rows of the accepted files, each with the file it came from and that upload's
    version (audit columns), in place of the batch's file index. The file is dictionary-encoded
    (the batch's index into its keys): one key repeated on every row of a big file is ~25 MB
    at 650,000 rows."""
    keys = pa.array([f.file_key for f in files], pa.string())
    versions = pa.array([f.upload.version if f.upload else None for f in files], pa.int64())
    accepted = pa.array([f.upload is not None for f in files], pa.bool_())
    if not all(f.upload is not None for f in files):  # a filter copies every row
        valid = valid.filter(pc.take(accepted, valid.column(FILE_INDEX)))
    index = valid.column(FILE_INDEX)
    source = pa.chunked_array(
        [pa.DictionaryArray.from_arrays(chunk, keys) for chunk in index.chunks],
        pa.dictionary(pa.int32(), pa.string()),
    )
    stamped = valid.drop_columns([FILE_INDEX]).append_column(SOURCE_FILE, source)
    return stamped.append_column(SOURCE_VERSION, pc.take(versions, index))


def _download(
    lake: Lake,
    file_key: str,
    scratch: Path,
    listed: dict[str, ObjectInfo],
    delivery: Delivery,
) -> tuple[Source, ObjectInfo, Upload]:
    """The file, with the object and upload it is: in memory when small (a stream's files),
    else saved into ``scratch``. Another run may move it (archived or rejected) or a new upload
    replace it between the look and the download: then it is looked for again."""
    for attempt in range(DOWNLOAD_ATTEMPTS):
        where = listed if attempt == 0 else None
        source, upload = locate_source(lake, file_key, where, delivery)
        local: Source
        try:
            if source.size <= IN_MEMORY_BYTES:
                local, downloaded = lake.read(source.key)
            else:
                scratch.mkdir(exist_ok=True)
                local, downloaded = lake.download(source.key, scratch)
        except FileNotFoundError:
            continue
        if downloaded.etag == source.etag:
            return local, downloaded, upload
    raise FileSkipped(file_key, f"it kept moving: {DOWNLOAD_ATTEMPTS} looks found it gone")


DOWNLOAD_ATTEMPTS = 5
IN_MEMORY_BYTES = 1024 * 1024  # about PREFETCH of these are held at once


def _discard(local: Source) -> None:
    if isinstance(local, Path):
        local.unlink()


@contextmanager
def _scratch() -> Iterator[Path]:
    """A private local folder for a step's files (a download, Parquet before its upload)."""
    with tempfile.TemporaryDirectory(prefix="ecom-lakehouse-") as folder:
        yield Path(folder)


def _write_parquet(
    lake: Lake, key: str, table: pa.Table, scratch: Path, compression: str = "zstd"
) -> None:
    # A name of its own: the landed file sits in the same folder, under whatever name it has.
    with tempfile.NamedTemporaryFile(dir=scratch, suffix=".parquet") as local:
        pq.write_table(table, local.name, compression=compression)
        lake.write(key, Path(local.name))


def has_batch(lake: Lake, contract: DatasetContract, batch_id: str) -> bool:
    """Whether validation left the batch rows to merge (a manifest beside them)."""
    return lake.head(layout.batch_manifest_key(contract.name, batch_id)) is not None


def batch_uploads(lake: Lake, contract: DatasetContract, batch_id: str) -> list[Upload]:
    """The uploads of a validated batch (its manifest; FileNotFoundError when it has none)."""
    data, _ = lake.read(layout.batch_manifest_key(contract.name, batch_id))
    return [Upload.from_dict(json.loads(line)) for line in data.decode().splitlines() if line]


@dataclass(frozen=True)
class LoadedBatch:
    outcome: MergeOutcome
    uploads: list[Upload]  # the uploads whose rows were merged (read with them, from one object)


def load_batch(
    lake: Lake, contract: DatasetContract, batch_id: str, run_id: str = ""
) -> LoadedBatch:
    """MERGE the batch's validated rows into the dataset's table in one commit that records
    every upload of the batch (exactly once per upload), and the run that made it."""
    release_freed_memory()  # what validation freed, before the merge allocates
    uploads = batch_uploads(lake, contract, batch_id)
    with _scratch() as scratch:
        local, _ = lake.download(layout.validated_batch_key(contract.name, batch_id), scratch)
        note = CommitNote(run_id, batch_id)
        return LoadedBatch(merge_batch(contract, lake, local, uploads, note), uploads)


@dataclass(frozen=True)
class ArchiveOutcome:
    archived_key: str
    moved: bool  # False when an earlier attempt had already moved it
    note: str = ""


def archive_file(lake: Lake, upload: Upload) -> ArchiveOutcome:
    """Move the file from where its rows were read (``raw/``, or ``rejected/`` for a file
    re-processed from there) to ``archived/`` (call only after its rows are committed), with
    the upload's record beside it where the move makes a new object (written first: such an
    archived file always has one; a renamed file keeps its ETag and time, its upload's identity).

    A file whose ETag changed since it was validated is a newer upload: it stays for its own
    run. A file another run archived first, or re-processed from the archive, is left there.
    """
    source = upload.source_key or layout.raw_key(upload.file_key)
    archived = layout.archived_key(upload.file_key)
    if source == archived:
        return ArchiveOutcome(archived, moved=False, note="re-processed from the archive")
    current = lake.head(source)
    if current is None:
        return _archived_by_another(lake, source, archived)
    if current.etag != upload.etag:
        return ArchiveOutcome(archived, moved=False, note=f"{NEWER_UPLOAD}; left in {source}")
    if not lake.move_keeps_identity:  # else the archived copy itself tells its upload
        lake.write(layout.upload_record_key(archived), upload.record())
    try:
        lake.move(source, archived, expected_etag=upload.etag)
    except FileNotFoundError:  # another run moved it meanwhile
        return _archived_by_another(lake, source, archived)
    except ObjectChanged:
        return ArchiveOutcome(archived, moved=False, note=f"{NEWER_UPLOAD}; left in {source}")
    if source.startswith(layout.REJECTED):  # it is loaded now: no longer a rejected file
        with contextlib.suppress(FileNotFoundError):
            lake.delete(layout.reason_key(source))
    return ArchiveOutcome(archived, moved=True)


NEWER_UPLOAD = "a newer upload replaced the file"


def _archived_by_another(lake: Lake, source: str, archived: str) -> ArchiveOutcome:
    if lake.head(archived) is not None:
        return ArchiveOutcome(archived, moved=False, note="already archived")
    # its rows are committed; the file itself was taken away by someone else
    return ArchiveOutcome(archived, moved=False, note=f"gone from {source} before its move")


def archive_batch(
    lake: Lake, contract: DatasetContract, batch_id: str
) -> dict[str, ArchiveOutcome]:
    """Move every file whose rows the batch committed to ``archived/`` (call only after the
    commit; the moves run side by side: each is a few round trips to the store); then the
    batch's validated rows, merged, are removed (the manifest last). A batch whose manifest is
    gone was archived whole by an earlier attempt: nothing to do."""
    try:
        uploads = batch_uploads(lake, contract, batch_id)
    except FileNotFoundError:
        return {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        moved = list(pool.map(lambda upload: archive_file(lake, upload), uploads))
    outcomes = {upload.file_key: outcome for upload, outcome in zip(uploads, moved, strict=True)}
    for key in (
        layout.validated_batch_key(contract.name, batch_id),
        layout.batch_manifest_key(contract.name, batch_id),
    ):
        with contextlib.suppress(FileNotFoundError):
            lake.delete(key)
    return outcomes


def not_loaded(
    contract: DatasetContract, files: Iterable[FileValidation], delivery: Delivery, run_id: str
) -> list[Attempt]:
    """The history's rows of the files validation did not pass on: rejected whole, or skipped
    (taken by another writer, or gone)."""
    attempts = []
    for file in files:
        if file.rejection is not None:
            attempts.append(
                Attempt.of(
                    contract.name,
                    file.rejection.upload,
                    REJECTED,
                    reason=f"{file.rejection.kind}: {file.rejection.reason}",
                    run_id=run_id,
                    rows_read=file.check.rows_read if file.check else None,
                )
            )
        elif file.skipped is not None:
            skipped = Attempt(
                contract.name,
                file.file_key,
                delivery.etags.get(file.file_key, ""),
                None,
                SKIPPED,
                datetime.now(UTC),
                reason=str(file.skipped),
                run_id=run_id,
                source_key=file.skipped.now_at or None,
            )
            attempts.append(skipped)
    return attempts
