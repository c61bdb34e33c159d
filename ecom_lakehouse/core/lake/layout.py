"""The bucket layout: every zone and path, in one place (the same locally and on S3).

A raw file is identified by its *file key*: its path under ``raw/`` (for example
``orders/orders_apr_2025.xlsx``).
"""

from __future__ import annotations

from typing import Literal

RAW = "raw/"
VALIDATED = "validated/"
PROCESSED = "processed/"
ARCHIVED = "archived/"
REJECTED = "rejected/"
CATALOG = "catalog/"
SCRIPTS = "scripts/"  # the Spark job's package, per version
PIPES = "dagster-pipes/"  # Dagster Pipes context and messages of Spark job runs

FileRejection = Literal["invalid_schema", "unreadable", "too_large"]


def file_key(raw_key: str) -> str:
    """``raw/orders/x.xlsx`` -> ``orders/x.xlsx``."""
    if not raw_key.startswith(RAW):
        raise ValueError(f"{raw_key!r} is not under {RAW}")
    return raw_key.removeprefix(RAW)


def raw_folder(file_key: str) -> str:
    """The first path segment: the dataset's raw folder (``orders``)."""
    return file_key.split("/", 1)[0]


def name_in_folder(file_key: str) -> str:
    """The file's path inside its dataset folder (``x.xlsx``; keeps sub-folders)."""
    return file_key.split("/", 1)[1] if "/" in file_key else file_key


def raw_key(file_key: str) -> str:
    return RAW + file_key


def archived_key(file_key: str) -> str:
    return ARCHIVED + file_key


def rejected_file_key(kind: FileRejection, file_key: str) -> str:
    return f"{REJECTED}{kind}/{file_key}"


def reason_key(rejected_key: str) -> str:
    """The JSON reason written beside a rejected file."""
    return rejected_key + ".reason.json"


def upload_record_key(archived_key: str) -> str:
    """The upload's record kept beside an archived file (its landing version, for newest-wins
    when the file is re-processed from the archive)."""
    return archived_key + ".upload.json"


def validated_batch_key(dataset: str, batch_id: str) -> str:
    """The good rows of a batch of files, typed, until the merge has them."""
    return f"{VALIDATED}{dataset}/{batch_id}.parquet"


def batch_manifest_key(dataset: str, batch_id: str) -> str:
    """The uploads a validated batch holds (JSON lines: one upload per line), written after its
    rows: the merge records each of them, the archive moves each of them."""
    return f"{VALIDATED}{dataset}/{batch_id}.uploads.jsonl"


def rejected_records_prefix(dataset: str) -> str:
    return f"{REJECTED}records/{dataset}/"


def rejected_records_key(dataset: str, file_key: str) -> str:
    return f"{rejected_records_prefix(dataset)}{name_in_folder(file_key)}.parquet"


def table_path(dataset: str) -> str:
    return f"{PROCESSED}{dataset}"


def is_landing_file(raw_key: str) -> bool:
    """Folder markers and hidden/temporary files (``.DS_Store``, ``~$book.xlsx``, ``_SUCCESS``,
    anything under a ``_temporary/`` or ``.staging/`` folder, as Spark and Hive hide them) are
    not data: they stay where they are and are never processed."""
    *folders, name = raw_key.split("/")
    hidden = any(part.startswith((".", "_")) for part in folders[1:])
    return bool(name) and not hidden and not name.startswith((".", "~$", "_"))
