"""The three steps a landed file goes through, as plain functions over the lake.

validate -> merge -> archive. The Dagster assets are thin wrappers around these; keeping the
steps free of Dagster lets the benchmarks and the Spark job reuse them as they are.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pyarrow as pa
import pyarrow.parquet as pq

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core import layout
from ecom_lakehouse.core.delta import merge_batch
from ecom_lakehouse.core.memory import release_freed_memory
from ecom_lakehouse.core.merge_spec import MergeOutcome
from ecom_lakehouse.core.readers import UnreadableFile, detect_format, iter_parts
from ecom_lakehouse.core.storage import Lake, ObjectChanged, ObjectInfo
from ecom_lakehouse.core.uploads import Upload, millis
from ecom_lakehouse.core.validation import InvalidSchema, ValidationResult, validate


class FileRejected(Exception):
    """The whole file was rejected and moved under ``rejected/``."""

    def __init__(self, kind: layout.FileRejection, reason: str, rejected_key: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.rejected_key = rejected_key


class SourceChanged(Exception):
    """The file was replaced while it was being handled: its new upload has a run of its own."""

    def __init__(self, file_key: str) -> None:
        super().__init__(f"{file_key} was replaced meanwhile; its new upload runs next")


class SourceMissing(Exception):
    """The file is neither in ``raw/`` nor in ``archived/``."""

    def __init__(self, file_key: str) -> None:
        super().__init__(f"{file_key} is neither in {layout.RAW} nor in {layout.ARCHIVED}")


@dataclass
class ValidatedFile:
    upload: Upload
    source: ObjectInfo
    format: str
    result: ValidationResult
    validated_key: str
    rejected_records_key: str | None


def locate_source(lake: Lake, file_key: str) -> tuple[ObjectInfo, Upload]:
    """The file in ``raw/`` and its upload; or else its archived copy, a new delivery of the
    upload the archive recorded (re-processing from the archive). A file another run has
    rejected meanwhile is reported as rejected."""
    info = lake.head(layout.raw_key(file_key))
    if info is not None:
        return info, Upload.of(info)
    archived = layout.archived_key(file_key)
    info = lake.head(archived)
    if info is not None:
        record = lake.head(layout.upload_record_key(archived))
        if record is None:  # archived before records were kept: the copy is the upload
            upload = Upload(file_key, info.etag, millis(info.last_modified))
        else:
            upload = Upload.from_record(lake.read(record.key)[0])
        return info, upload.redelivered(datetime.now(UTC))
    for kind in get_args(layout.FileRejection):
        rejected = layout.rejected_file_key(kind, file_key)
        if lake.head(rejected) is not None:
            reason = json.loads(lake.read(layout.reason_key(rejected))[0]).get("reason", "")
            raise FileRejected(kind, reason, rejected)
    raise SourceMissing(file_key)


def reject_file(
    lake: Lake, source: ObjectInfo, file_key: str, kind: layout.FileRejection, reason: str
) -> FileRejected:
    """Move the whole file under ``rejected/<kind>/`` with a JSON reason beside it. The reason
    is written first, so a rejected file is never found without one."""
    target = layout.rejected_file_key(kind, file_key)
    detail = {
        "file": file_key,
        "source_key": source.key,
        "etag": source.etag,
        "rejection": kind,
        "reason": reason,
        "rejected_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    lake.write(layout.reason_key(target), json.dumps(detail, indent=2).encode())
    try:
        lake.move(source.key, target, expected_etag=source.etag)
    except FileNotFoundError:
        if lake.head(target) is None:  # not rejected by another run: gone some other way
            raise
    except ObjectChanged:  # a new upload replaced it: that one has a run of its own
        lake.delete(layout.reason_key(target))
        raise SourceChanged(file_key) from None
    return FileRejected(kind, reason, target)


def validate_file(lake: Lake, contract: DatasetContract, file_key: str) -> ValidatedFile:
    """Read and validate one landed file; write its good rows (typed Parquet) and its bad rows.

    Raises FileRejected after moving a file that cannot be read or whose header is wrong.
    """
    release_freed_memory()  # what earlier files' steps freed, before this one allocates
    source, upload = locate_source(lake, file_key)
    fmt = detect_format(file_key)
    if fmt is None or fmt not in contract.formats:
        raise reject_file(
            lake,
            source,
            file_key,
            "unreadable",
            f"unsupported file type for {contract.name}: accepted formats are "
            f"{', '.join(contract.formats)}",
        )
    with _scratch() as scratch:
        local, source, upload = _download(lake, file_key, scratch)
        try:
            parts = iter_parts(local, fmt, contract.source_column_names)
            result = validate(contract, parts, file_key)
        except UnreadableFile as exc:
            raise reject_file(lake, source, file_key, "unreadable", str(exc)) from None
        except InvalidSchema as exc:
            raise reject_file(lake, source, file_key, "invalid_schema", str(exc)) from None

        validated_key = layout.validated_key(contract.name, file_key)
        valid = result.valid.replace_schema_metadata(
            {**(result.valid.schema.metadata or {}), **upload.parquet_metadata()}
        )
        _write_parquet(lake, validated_key, valid, scratch)
        rejects_key = layout.rejected_records_key(contract.name, file_key)
        if result.rejected.num_rows:
            _write_parquet(lake, rejects_key, result.rejected, scratch)
        elif lake.head(rejects_key) is not None:
            with contextlib.suppress(FileNotFoundError):  # another run deleted them first
                lake.delete(
                    rejects_key
                )  # a re-processed file keeps no rejects of an earlier attempt
    return ValidatedFile(
        upload,
        source,
        fmt,
        result,
        validated_key,
        rejects_key if result.rejected.num_rows else None,
    )


def _download(lake: Lake, file_key: str, scratch: Path) -> tuple[Path, ObjectInfo, Upload]:
    """The file saved into ``scratch``, with the object and upload it is. Another run may move
    it (archived or rejected) or a new upload replace it between the look and the download:
    then it is looked for again."""
    for _ in range(DOWNLOAD_ATTEMPTS):
        source, upload = locate_source(lake, file_key)
        try:
            local, downloaded = lake.download(source.key, scratch)
        except FileNotFoundError:
            continue
        if downloaded.etag == source.etag:
            return local, downloaded, upload
    raise SourceMissing(file_key)


DOWNLOAD_ATTEMPTS = 5


@contextmanager
def _scratch() -> Iterator[Path]:
    """A private local folder for a step's files (a download, Parquet before its upload)."""
    with tempfile.TemporaryDirectory(prefix="ecom-lakehouse-") as folder:
        yield Path(folder)


def _write_parquet(lake: Lake, key: str, table: pa.Table, scratch: Path) -> None:
    # A name of its own: the landed file sits in the same folder, under whatever name it has.
    with tempfile.NamedTemporaryFile(dir=scratch, suffix=".parquet") as local:
        pq.write_table(table, local.name, compression="zstd")
        lake.write(key, Path(local.name))


def validated_upload(lake: Lake, contract: DatasetContract, file_key: str) -> Upload:
    """The upload validation recorded for a file, read from the validated Parquet's footer
    alone (two small ranged reads, however large the file)."""
    key = layout.validated_key(contract.name, file_key)
    footer_length = int.from_bytes(lake.read_tail(key, 8)[:4], "little")
    footer = pq.read_schema(io.BytesIO(lake.read_tail(key, footer_length + 8)))
    return Upload.from_parquet_metadata(footer.metadata, file_key)


@dataclass(frozen=True)
class LoadedFile:
    outcome: MergeOutcome
    upload: Upload  # the upload whose rows were merged (read with them, from one object)


def load_file(lake: Lake, contract: DatasetContract, file_key: str) -> LoadedFile:
    """MERGE the file's validated rows into its Delta table, exactly once per upload. The rows
    and the upload they came from are one object: another run validating the file meanwhile
    replaces both together."""
    release_freed_memory()  # what validation freed, before the merge allocates
    with _scratch() as scratch:
        local, _ = lake.download(layout.validated_key(contract.name, file_key), scratch)
        batch = pq.read_table(local)
    upload = Upload.from_parquet_metadata(batch.schema.metadata, file_key)
    return LoadedFile(merge_batch(contract, lake, batch, upload), upload)


@dataclass(frozen=True)
class ArchiveOutcome:
    archived_key: str
    moved: bool  # False when an earlier attempt had already moved it
    note: str = ""


def archive_file(lake: Lake, upload: Upload) -> ArchiveOutcome:
    """Move the raw file to ``archived/`` (call only after its rows are committed), with the
    upload's record beside it (written first: an archived file always has one).

    A raw file whose ETag changed since it was validated is a newer upload: it stays in
    ``raw/`` for its own run.
    """
    raw, archived = layout.raw_key(upload.file_key), layout.archived_key(upload.file_key)
    current = lake.head(raw)
    if current is None:
        if lake.head(archived) is None:
            raise SourceMissing(upload.file_key)
        return ArchiveOutcome(archived, moved=False, note="already archived")
    if current.etag != upload.etag:
        return ArchiveOutcome(
            archived, moved=False, note="a newer upload replaced the file; left in raw/"
        )
    lake.write(layout.upload_record_key(archived), upload.record())
    try:
        lake.move(raw, archived, expected_etag=upload.etag)
    except FileNotFoundError:  # another run moved it meanwhile
        if lake.head(archived) is None:
            raise SourceMissing(upload.file_key) from None
        return ArchiveOutcome(archived, moved=False, note="already archived")
    except ObjectChanged:
        return ArchiveOutcome(
            archived, moved=False, note="a newer upload replaced the file; left in raw/"
        )
    return ArchiveOutcome(archived, moved=True)
