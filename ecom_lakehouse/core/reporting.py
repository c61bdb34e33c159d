"""What a load reports, whichever engine ran it: the materialization's metadata. The local
engine hands it to Dagster; the Spark job sends it through Pipes."""

from __future__ import annotations

from ecom_lakehouse.core.merge_spec import MergeOutcome
from ecom_lakehouse.core.uploads import Upload


def load_metadata(
    outcome: MergeOutcome, upload: Upload, engine: str, row_count: int
) -> dict[str, int | bool | str]:
    return {
        "rows_inserted": outcome.inserted,
        "rows_updated": outcome.updated,
        "rows_stale": outcome.stale,
        "already_committed": outcome.already_committed,
        "table_version": outcome.table_version,
        "source_etag": upload.etag,
        "upload_version": upload.version,
        "engine": engine,
        "dagster/row_count": row_count,
    }
