"""Each file's report (``runner/reports.py``), read from its run's Dagster events."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

from ecom_lakehouse.contracts import TableSpec
from ecom_lakehouse.core.tables.reporting import FILES
from ecom_lakehouse.names import (
    DAY_TAG,
    dataset_of_ingest_job,
    maintenance_op,
    names_of,
)
from ecom_lakehouse.runner.reports import FileReport, KpiReport, MaintenanceLine


def run_file_keys(run: dg.DagsterRun) -> list[str]:
    """The files an ingest run was given: those its run config lists. None for a run of a
    landing day (its files were found by the run: its events name them)."""
    validated = names_of(dataset_of_ingest_job(run.job_name)).validated.to_python_identifier()
    ops: Any = run.run_config.get("ops") or {}
    files = (ops.get(validated) or {}).get("config", {}).get("files")
    return list(files or [])


def _per_file(metadata: Mapping[str, dg.MetadataValue]) -> tuple[dict[str, Any], dict]:
    """A materialization's run-level values, and its files table's rows by file."""
    run_level = {k: v.value for k, v in metadata.items() if k != FILES}
    files = metadata.get(FILES)
    rows = files.value.records if isinstance(files, dg.TableMetadataValue) else []
    return run_level, {str(r.data["file"]): dict(r.data) for r in rows}


def reports_from_events(
    run: dg.DagsterRun, success: bool, events: Iterable[dg.DagsterEvent], file_keys: Sequence[str]
) -> list[FileReport]:
    """One report per file of the run: what each asset's files table says happened to the
    file; the run's checks and its failure (if any) concern every file it loaded."""
    dataset = dataset_of_ingest_job(run.job_name)
    events = list(events)
    keys = list(file_keys) or _validated_files(events, names_of(dataset).validated)
    if not keys and not success:  # a day's run that failed before it knew its files
        keys = [f"(the uploads that landed on {run.tags.get(DAY_TAG, '?')})"]
    reports = {key: FileReport(key, dataset, success, run.run_id, run.job_name) for key in keys}
    checks: dict[str, bool] = {}
    failure: tuple[str, str, str] | None = None  # step, error, traceback
    for event in events:
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            run_level, by_file = _per_file(mat.metadata)
            for key, report in reports.items():
                row = by_file.get(key, {})
                report.metadata[mat.asset_key.to_user_string()] = {**run_level, **row}
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            checks[evaluation.check_name] = evaluation.passed
        elif event.is_step_failure and failure is None:
            failure = (event.step_key or "", *_error_of(event.step_failure_data))
    for report in reports.values():
        validation = report.metadata.get(f"{dataset}_validated", {})
        status = validation.get("status")
        if status == "rejected":
            report.success, report.failed_step = False, f"{dataset}_validated"
            report.rejection = str(validation.get("rejection", ""))
            report.moved_to = str(validation.get("moved_to", ""))
            report.error = str(validation.get("reason", ""))
            continue
        if status == "skipped":  # another writer took care of it: nothing to do, no failure
            report.skipped = str(validation.get("reason", ""))
            report.moved_to = str(validation.get("now_at", ""))
            continue
        report.checks = dict(checks)
        if failure is not None:
            report.success = False
            report.failed_step, report.error, report.traceback = failure
        elif not success:
            report.error = "the run failed before any step ran; see the run's logs"
    committed = [r for r in reports.values() if r.success and not r.skipped]
    for report in committed:
        report.batch_files = len(committed)
    return list(reports.values())


def _validated_files(events: Sequence[dg.DagsterEvent], validated: dg.AssetKey) -> list[str]:
    """The files a run found for itself (a landing day's), from its validated step's table."""
    for event in events:
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            if mat.asset_key == validated:
                return list(_per_file(mat.metadata)[1])
    return []


def _error_of(failure: Any) -> tuple[str, str]:
    """A step failure's one-line error (the cause Dagster wrapped) and its traceback."""
    user = failure.user_failure_data
    if user and user.description:
        return user.description, ""
    if not failure.error:
        return "the step failed; see the run's logs", ""
    cause = failure.error
    while cause.cause is not None:  # Dagster wraps the error that was raised
        cause = cause.cause
    first_line = (cause.message.strip().splitlines() or [""])[0]
    return (
        f"{cause.cls_name}: {first_line}",
        "Traceback, from the run's event log:\n" + failure.error.to_string(),
    )


def reports_for_run(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[FileReport]:
    """The reports of a finished ingest run's files, from the instance's event log."""
    events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event]
    success = run.status == dg.DagsterRunStatus.SUCCESS
    return reports_from_events(run, success, events, run_file_keys(run))


def kpi_reports_from_events(success: bool, events: Iterable[dg.DagsterEvent]) -> list[KpiReport]:
    """One report per KPI table a run refreshed (or failed to)."""
    reports: dict[str, KpiReport] = {}
    for event in events:
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            name = mat.asset_key.to_user_string()
            reports[name] = KpiReport(name, True, {k: v.value for k, v in mat.metadata.items()})
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            name = evaluation.asset_key.to_user_string()
            reports.setdefault(name, KpiReport(name, True)).checks[evaluation.check_name] = (
                evaluation.passed
            )
        elif event.is_step_failure and event.step_key:
            failure = event.step_failure_data
            error = failure.error.message.strip().splitlines()[0] if failure.error else "failed"
            reports[event.step_key] = KpiReport(event.step_key, False, error=error)
    return list(reports.values())


def maintenance_lines(
    specs: Iterable[TableSpec], events: Iterable[dg.DagsterEvent]
) -> list[MaintenanceLine]:
    """One line per table a maintenance run was asked to keep (from its ops' events)."""
    tables = {maintenance_op(spec): spec.name for spec in specs}
    lines = {table: MaintenanceLine(table, True) for table in tables.values()}
    for event in events:
        if event.event_type == dg.DagsterEventType.ASSET_OBSERVATION:
            observation = event.asset_observation_data.asset_observation
            table = observation.asset_key.to_user_string()
            lines[table] = MaintenanceLine(
                table, True, {k: v.value for k, v in observation.metadata.items()}
            )
        elif event.is_step_failure and event.step_key:
            failure = event.step_failure_data
            error = failure.error.message.strip().splitlines()[0] if failure.error else "failed"
            table = tables[event.step_key]
            lines[table] = MaintenanceLine(table, False, error=error)
    return list(lines.values())
