"""What became of each file of a run: the ``files`` table every ingest materialization carries,
and the log lines of files that were not simply taken."""

import json

import dagster as dg

from ecom_lakehouse.core.pipeline import (
    FileValidation,
)
from ecom_lakehouse.core.tables.reporting import (
    FileValue,
)

ALREADY_APPLIED = "already applied: the table had recorded this upload"


def failure_reason(error: Exception) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line}"[:1000]


def file_validation(file: FileValidation) -> dict[str, FileValue]:
    """One file's validation: its row of the validated materialization's ``files`` table."""
    if file.rejection is not None:
        r = file.rejection
        return {
            "file": file.file_key,
            "status": "rejected",
            "rejection": r.kind,
            "reason": r.reason,
            "moved_to": r.rejected_key,
        }
    if file.skipped is not None:
        return {
            "file": file.file_key,
            "status": "skipped",
            "reason": file.skipped.reason,
            "now_at": file.skipped.now_at,
        }
    if file.upload is None or file.check is None or file.source is None:
        raise ValueError(f"{file.file_key}: validated without an upload or a check")
    check = file.check
    return {
        "file": file.file_key,
        "status": "validated",
        "source_etag": file.upload.etag,
        "upload_version": file.upload.version,
        "format": file.format or "",
        "rows_read": check.rows_read,
        "rows_valid": check.rows_valid,
        "rows_rejected": check.rejected.num_rows if check.rejected is not None else 0,
        "rejected_by_reason": json.dumps(check.rejected_by_reason),
        "rejected_records_path": file.rejected_records_key or "",
        "rescued_columns": ", ".join(check.extra_columns),
    }


def log_file_outcomes(log: dg.DagsterLogManager, rows: list[dict[str, FileValue]]) -> None:
    """A line per file that was not simply validated: skipped, rejected, or with bad rows."""
    for row in rows:
        if row["status"] == "skipped":
            log.info(f"{row['file']}: skipped: {row['reason']} (now {row['now_at']})")
        elif row["status"] != "validated":
            log.warning(f"{row['file']}: {row['status']}: {row['reason']}")
        elif row["rows_rejected"]:
            log.warning(
                f"{row['file']}: {row['rows_rejected']} of {row['rows_read']} rows "
                f"rejected: {row['rejected_by_reason']}"
            )


def files_table(rows: list[dict[str, FileValue]]) -> dg.TableMetadataValue:
    """Per-file outcomes as a table the UI shows (columns: every key any row has)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return dg.MetadataValue.table(
        records=[dg.TableRecord({c: row.get(c) for c in columns}) for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(c, _kind(rows, c)) for c in columns]),
    )


def _kind(rows: list[dict[str, FileValue]], column: str) -> str:
    kinds = {type(row[column]) for row in rows if row.get(column) is not None}
    return {frozenset({bool}): "bool", frozenset({int}): "int"}.get(frozenset(kinds), "string")
