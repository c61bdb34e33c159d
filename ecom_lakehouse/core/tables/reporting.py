"""What a load reports, whichever engine ran it: the materialization's metadata, for the batch
and for each file of it. The local engine hands it to Dagster; the Spark job sends the batch's
through Pipes and the launcher adds each file's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ecom_lakehouse.core.lake.uploads import Upload
from ecom_lakehouse.core.tables.merge_spec import MergeOutcome

ALREADY_COMMITTED_FILES = "already_committed_files"
# Each ingest materialization's table of the run's files: one row per file, a "file" column.
FILES = "files"
FileValue = int | str | bool | None


def load_metadata(
    outcome: MergeOutcome, uploads: Sequence[Upload], engine: str, row_count: int
) -> dict[str, int | str | list[str]]:
    """The batch's: rows written (for all its files together), the table's version and size."""
    return {
        "rows_inserted": outcome.inserted,
        "rows_updated": outcome.updated,
        "rows_stale": outcome.stale,
        "table_version": outcome.table_version,
        "files_committed": len(uploads) - len(outcome.committed_before),
        ALREADY_COMMITTED_FILES: list(outcome.committed_before),
        "engine": engine,
        "dagster/row_count": row_count,
    }


def upload_metadata(
    upload: Upload, table_version: int, already_committed: bool, committed_at: int | None = None
) -> dict[str, FileValue]:
    """One file's: the upload its rows came from and the commit that recorded it (with
    ``committed_at``, ms: the lag from its landing to that commit)."""
    fields: dict[str, FileValue] = {
        "status": "already committed" if already_committed else "committed",
        "already_committed": already_committed,
        "source_etag": upload.etag,
        "upload_version": upload.version,
        "table_version": table_version,
    }
    if committed_at is not None and not already_committed:
        fields["lag_ms"] = max(0, committed_at - upload.version)
    return fields


def metadata_value(metadata: Mapping[str, object], name: str) -> Any:
    """A raw value, whether the metadata holds it as is or wrapped (as Pipes hands it back)."""
    value = metadata.get(name)
    return getattr(value, "value", value)
