"""The three steps a landed file goes through, as plain functions over the lake.

validate -> merge -> archive. The Dagster assets are thin wrappers around these; keeping the
steps free of Dagster lets the benchmarks and the Spark job reuse them as they are.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core import layout
from ecom_lakehouse.core.delta import merge_batch
from ecom_lakehouse.core.memory import release_freed_memory
from ecom_lakehouse.core.merge_spec import MergeOutcome
from ecom_lakehouse.core.readers import UnreadableFile, detect_format, iter_parts
from ecom_lakehouse.core.storage import Lake, ObjectChanged, ObjectInfo
from ecom_lakehouse.core.validation import InvalidSchema, ValidationResult, validate

# Keys of the validated Parquet's schema metadata: what the merge needs to know of the upload.
META_FILE_KEY = b"ecom_lakehouse.file_key"
META_ETAG = b"ecom_lakehouse.source_etag"
META_UPLOAD_VERSION = b"ecom_lakehouse.upload_version"


class FileRejected(Exception):
    """The whole file was rejected and moved under ``rejected/``."""

    def __init__(self, kind: layout.FileRejection, reason: str, rejected_key: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.rejected_key = rejected_key


class SourceMissing(Exception):
    """The file is neither in ``raw/`` nor in ``archived/``."""

    def __init__(self, file_key: str) -> None:
        super().__init__(f"{file_key} is neither in {layout.RAW} nor in {layout.ARCHIVED}")


@dataclass
class ValidatedFile:
    file_key: str
    source: ObjectInfo
    format: str
    result: ValidationResult
    validated_key: str
    rejected_records_key: str | None


def upload_version(info: ObjectInfo) -> int:
    """An upload's position in time (ms): a newer upload of the same key has a larger one."""
    return int(info.last_modified.timestamp() * 1000)


def locate_source(lake: Lake, file_key: str) -> ObjectInfo:
    """The file in ``raw/``, or else its archived copy (re-processing from the archive)."""
    for key in (layout.raw_key(file_key), layout.archived_key(file_key)):
        info = lake.head(key)
        if info is not None:
            return info
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
    lake.move(source.key, target, expected_etag=source.etag)
    return FileRejected(kind, reason, target)


def validate_file(lake: Lake, contract: DatasetContract, file_key: str) -> ValidatedFile:
    """Read and validate one landed file; write its good rows (typed Parquet) and its bad rows.

    Raises FileRejected after moving a file that cannot be read or whose header is wrong.
    """
    release_freed_memory()  # what earlier files' steps freed, before this one allocates
    source = locate_source(lake, file_key)
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
        local, source = lake.download(source.key, scratch)
        try:
            result = validate(contract, iter_parts(local, fmt), file_key)
        except UnreadableFile as exc:
            raise reject_file(lake, source, file_key, "unreadable", str(exc)) from None
        except InvalidSchema as exc:
            raise reject_file(lake, source, file_key, "invalid_schema", str(exc)) from None

        validated_key = layout.validated_key(contract.name, file_key)
        valid = result.valid.replace_schema_metadata(
            {
                **(result.valid.schema.metadata or {}),
                META_FILE_KEY: file_key.encode(),
                META_ETAG: source.etag.encode(),
                META_UPLOAD_VERSION: str(upload_version(source)).encode(),
            }
        )
        _write_parquet(lake, validated_key, valid, scratch)
        rejects_key = layout.rejected_records_key(contract.name, file_key)
        if result.rejected.num_rows:
            _write_parquet(lake, rejects_key, result.rejected, scratch)
        elif lake.head(rejects_key) is not None:
            lake.delete(rejects_key)  # a re-processed file keeps no rejects of an earlier attempt
    return ValidatedFile(
        file_key,
        source,
        fmt,
        result,
        validated_key,
        rejects_key if result.rejected.num_rows else None,
    )


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


def validated_upload(lake: Lake, contract: DatasetContract, file_key: str) -> tuple[str, int]:
    """The ETag and upload version validation recorded for a file, read from the validated
    Parquet's footer alone (two small ranged reads, however large the file)."""
    key = layout.validated_key(contract.name, file_key)
    footer_length = int.from_bytes(lake.read_tail(key, 8)[:4], "little")
    footer = pq.read_schema(io.BytesIO(lake.read_tail(key, footer_length + 8)))
    return _upload_of(footer, file_key)


def _upload_of(schema: pa.Schema, file_key: str) -> tuple[str, int]:
    """(ETag, upload version) from a validated Parquet schema's metadata, checked to be the
    file's own."""
    meta = schema.metadata or {}
    if meta.get(META_FILE_KEY, b"").decode() != file_key:
        raise ValueError(f"validated rows of {file_key} are missing or belong to another file")
    return meta[META_ETAG].decode(), int(meta[META_UPLOAD_VERSION])


@dataclass(frozen=True)
class LoadedFile:
    outcome: MergeOutcome
    etag: str


def load_file(lake: Lake, contract: DatasetContract, file_key: str) -> LoadedFile:
    """MERGE the file's validated rows into its Delta table, exactly once per upload."""
    release_freed_memory()  # what validation freed, before the merge allocates
    with _scratch() as scratch:
        local, _ = lake.download(layout.validated_key(contract.name, file_key), scratch)
        batch = pq.read_table(local)
    etag, version = _upload_of(batch.schema, file_key)
    outcome = merge_batch(
        contract,
        lake.url(layout.table_path(contract.name)),
        lake.storage_options(),
        batch,
        file_key=file_key,
        etag=etag,
        upload_version=version,
    )
    return LoadedFile(outcome, etag)


@dataclass(frozen=True)
class ArchiveOutcome:
    archived_key: str
    moved: bool  # False when an earlier attempt had already moved it
    note: str = ""


def archive_file(lake: Lake, file_key: str, etag: str) -> ArchiveOutcome:
    """Move the raw file to ``archived/`` (call only after its rows are committed).

    A raw file whose ETag changed since it was validated is a newer upload: it stays in
    ``raw/`` for its own run.
    """
    raw, archived = layout.raw_key(file_key), layout.archived_key(file_key)
    current = lake.head(raw)
    if current is None:
        if lake.head(archived) is None:
            raise SourceMissing(file_key)
        return ArchiveOutcome(archived, moved=False, note="already archived")
    try:
        lake.move(raw, archived, expected_etag=etag)
    except ObjectChanged:
        return ArchiveOutcome(
            archived, moved=False, note="a newer upload replaced the file; left in raw/"
        )
    return ArchiveOutcome(archived, moved=True)
