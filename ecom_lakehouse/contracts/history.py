"""``load_history``: the record of every upload attempt, a table the lakehouse writes beside
the datasets (what Auto Loader's ``cloud_files_state`` and Snowflake's ``COPY_HISTORY`` are).
Its columns are declared here once; ``core/tables/history.py`` writes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import pyarrow as pa

from ecom_lakehouse.contracts.model import Column, Maintenance

# An attempt's outcome.
LOADED, REJECTED, SKIPPED, FAILED = "loaded", "rejected", "skipped", "failed"


@dataclass(frozen=True)
class HistoryTable:
    """A table of the lakehouse's own records (a ``TableSpec``: cataloged and maintained like
    the others)."""

    name: str
    description: str
    table_columns: tuple[Column, ...]
    partition_by: str | None = None
    maintenance: Maintenance = field(default_factory=Maintenance)

    @cached_property
    def table_schema(self) -> pa.Schema:
        return pa.schema([c.arrow_field() for c in self.table_columns])


def _count(name: str, description: str) -> Column:
    return Column(name, "bigint", required=False, description=description)


LOAD_HISTORY = HistoryTable(
    name="load_history",
    description=(
        "One row per upload attempt: what each ingest run made of each file it took (loaded, "
        "rejected, skipped, failed), with its counts and reason. Partitioned by dataset."
    ),
    partition_by="dataset",
    table_columns=(
        Column("dataset", "string", description="The dataset the file belongs to."),
        Column("file", "string", description="The file's key under raw/ (orders/x.xlsx)."),
        Column("etag", "string", description="The upload's ETag (its content)."),
        Column("landed_at", "timestamp", description="When the upload landed in raw/ (UTC)."),
        Column(
            "status",
            "string",
            description=(
                f"{LOADED}: its rows are committed; {REJECTED}: the whole file was rejected "
                f"(reason); {SKIPPED}: nothing to do (already applied, or taken by another "
                f"writer: reason); {FAILED}: the run failed before its commit (reason)."
            ),
        ),
        _count("rows_read", "Rows read from the file."),
        _count("rows_rejected", "Rows rejected (under rejected/records/, each with a reason)."),
        _count(
            "rows_inserted",
            "Rows the commit inserted: of the whole commit, which a run's files share "
            "(files_in_commit of them).",
        ),
        _count("rows_updated", "Rows the commit updated (of the whole commit, as rows_inserted)."),
        _count(
            "rows_stale",
            "Rows the commit kept back because the table, or another file of the batch, held a "
            "newer version of the key (of the whole commit).",
        ),
        _count("files_in_commit", "Uploads committed together with this one (itself included)."),
        Column("reason", "string", required=False, description="Why it was not loaded."),
        Column("run_id", "string", required=False, description="The Dagster run of the attempt."),
        _count("table_version", "The dataset table's version that committed its rows."),
        Column(
            "source_key",
            "string",
            required=False,
            description="Where the attempt read the file: raw/, or archived/ or rejected/ "
            "for a re-process.",
        ),
        Column(
            "loaded_at",
            "timestamp",
            description="When the attempt ended (UTC): for a loaded upload, its commit's time.",
        ),
    ),
)
