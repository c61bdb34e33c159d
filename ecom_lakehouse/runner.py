"""Process what is in ``raw/`` now, in this process, through the real Dagster definitions:
one evaluation of the raw sensor, then each run it requests, then a catalog refresh."""

import os
from dataclasses import dataclass, field

import dagster as dg

from ecom_lakehouse.definitions import DATASETS, catalog_job
from ecom_lakehouse.sensors import SENSOR_NAME

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class FileReport:
    file_key: str
    dataset: str
    success: bool
    metadata: dict[str, dict[str, object]] = field(default_factory=dict)  # asset -> metadata
    checks: dict[str, bool] = field(default_factory=dict)  # check name -> passed
    error: str = ""

    def summary(self) -> str:
        if not self.success:
            return f"FAILED   {self.file_key}: {self.error}"
        v = self.metadata.get(f"{self.dataset}_validated", {})
        t = self.metadata.get(self.dataset, {})
        a = self.metadata.get(f"{self.dataset}_archived", {})
        if t.get("already_committed"):
            loaded = f"already committed in table version {t.get('table_version')}"
        else:
            loaded = (
                f"{t.get('rows_inserted', 0)} inserted, {t.get('rows_updated', 0)} updated, "
                f"{t.get('rows_unchanged', 0)} unchanged (table version {t.get('table_version')})"
            )
        rejected = v.get("rows_rejected", 0)
        where = f" -> {v.get('rejected_records_path')}" if rejected else ""
        failed_checks = [name for name, passed in self.checks.items() if not passed]
        checks = f"; FAILED CHECKS: {', '.join(failed_checks)}" if failed_checks else ""
        return (
            f"OK       {self.file_key}: {v.get('rows_read', 0)} rows read; {loaded}; "
            f"{rejected} rejected{where}; archived to {a.get('archived_to', '?')}{checks}"
        )


def instance_for_cli() -> dg.DagsterInstance:
    """The instance `dagster dev` uses when DAGSTER_HOME is set (runs then show in the UI);
    otherwise a throw-away one."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def _report(dataset: str, file_key: str, result: dg.ExecuteInProcessResult) -> FileReport:
    report = FileReport(file_key, dataset, result.success)
    for event in result.all_events:
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
            if failure.user_failure_data and failure.user_failure_data.description:
                report.error = failure.user_failure_data.description
            elif failure.error:
                report.error = f"{failure.error.cls_name}: {failure.error.message.strip()}"
    return report


def ingest(
    instance: dg.DagsterInstance, defs: dg.Definitions, *, verbose: bool = False
) -> list[FileReport]:
    run_config = {} if verbose else QUIET
    sensor = defs.get_repository_def().get_sensor_def(SENSOR_NAME)
    # No cursor: everything in raw/ now is processed, including files whose earlier run failed.
    context = dg.build_sensor_context(resources=defs.resources, sensor_name=SENSOR_NAME)
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    reports = []
    for request in result.run_requests or []:
        dataset = next(d for d in DATASETS if request.job_name == DATASETS[d].ingest_job.name)
        job = defs.resolve_job_def(request.job_name)
        run = job.execute_in_process(
            partition_key=request.partition_key,
            instance=instance,
            tags={**request.tags, "ecom_lakehouse/trigger": "cli"},
            run_config=run_config,
            raise_on_error=False,
        )
        reports.append(_report(dataset, str(request.partition_key), run))
    if any(r.success for r in reports):
        defs.resolve_job_def(catalog_job.name).execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=True
        )
    return reports
