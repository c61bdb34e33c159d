"""A file's report (``core/reports.py``), read from a run's Dagster events."""

from collections.abc import Iterable

import dagster as dg

from ecom_lakehouse.core.reports import FileReport, KpiReport
from ecom_lakehouse.names import FILE_TAG, dataset_of_ingest_job


def report_from_events(
    run: dg.DagsterRun, success: bool, events: Iterable[dg.DagsterEvent]
) -> FileReport:
    file_key = run.tags.get(FILE_TAG) or run.tags.get("dagster/partition", "?")
    dataset = dataset_of_ingest_job(run.job_name)
    report = FileReport(file_key, dataset, success, run.run_id, run.job_name)
    for event in events:
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            report.metadata[mat.asset_key.to_user_string()] = {
                k: v.value for k, v in mat.metadata.items()
            }
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            report.checks[evaluation.check_name] = evaluation.passed
        elif event.is_step_failure and not report.error:
            failure = event.step_failure_data
            report.failed_step = event.step_key or ""
            user = failure.user_failure_data
            if user and user.description:
                report.error = user.description
                meta = {k: v.value for k, v in (user.metadata or {}).items()}
                report.rejection = str(meta.get("rejection", ""))
                report.moved_to = str(meta.get("moved_to", ""))
            elif failure.error:
                cause = failure.error
                while cause.cause is not None:  # Dagster wraps the error that was raised
                    cause = cause.cause
                first_line = (cause.message.strip().splitlines() or [""])[0]
                report.error = f"{cause.cls_name}: {first_line}"
                report.traceback = (
                    "Traceback, from the run's event log:\n" + failure.error.to_string()
                )
    if not success and not report.error:
        report.error = "the run failed before any step ran; see the run's logs"
    return report


def report_for_run(instance: dg.DagsterInstance, run: dg.DagsterRun) -> FileReport:
    """The report of a finished ingest run, from the instance's event log."""
    events = [e.dagster_event for e in instance.all_logs(run.run_id) if e.dagster_event]
    return report_from_events(run, run.status == dg.DagsterRunStatus.SUCCESS, events)


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
