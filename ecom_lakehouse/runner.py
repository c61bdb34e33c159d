"""The CLI's work, in this process, through the real Dagster definitions. ``ingest``: what is
in ``raw/`` now: one evaluation of the raw sensor, then each run it requests (a batch of files
each), then the KPI tables those loads touched, then a catalog refresh. ``maintain``: the table
maintenance job for some tables."""

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg

from ecom_lakehouse.contracts import (
    CONTRACTS,
    KPIS,
    TableSpec,
    contract_for_raw_folder,
    table_specs,
)
from ecom_lakehouse.core import layout
from ecom_lakehouse.core.delta import lake_has_table
from ecom_lakehouse.core.landing import landing_day
from ecom_lakehouse.core.pipeline import FileSkipped, locate_source
from ecom_lakehouse.core.reports import FileReport, KpiReport, MaintenanceLine
from ecom_lakehouse.core.status import FAILED, NOT_RUN, PASSED, RUNNING
from ecom_lakehouse.defs.ingest import ingest_run_config
from ecom_lakehouse.defs.reports import (
    kpi_reports_from_events,
    maintenance_lines,
    reports_from_events,
    run_file_keys,
)
from ecom_lakehouse.defs.sensors import day_partition
from ecom_lakehouse.names import (
    CATALOG_JOB,
    FILES_TAG,
    KPI_JOB,
    MAINTENANCE_JOB,
    RAW_SENSOR,
    TRIGGER_TAG,
    catalog_key,
    kpi_names,
    maintenance_op,
    names_of,
)
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.notifications import Notifier
from ecom_lakehouse.resources.settings import dagster_home

# Dagster's console log stays quiet (the CLI prints a line per file); the instance's event log,
# what the UI shows, is complete either way.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def instance_for_cli() -> dg.DagsterInstance:
    """The instance `dagster dev` uses when DAGSTER_HOME is set (runs then show in the UI);
    otherwise a throw-away one."""
    if dagster_home():
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


class Timings(dict[str, float]):
    """Seconds spent per phase (the fixed-cost benchmark reports where the time goes)."""

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self[name] = self.get(name, 0.0) + time.perf_counter() - started


@contextlib.contextmanager
def _logging_disabled(level: int) -> Iterator[None]:
    logging.disable(level)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def ingest(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    *,
    verbose: bool = False,
    timings: Timings | None = None,
    kpi_reports: list[KpiReport] | None = None,
) -> list[FileReport]:
    """The files' reports; the KPI tables the loads touched are refreshed after them (their
    reports added to ``kpi_reports``), then every catalog entry."""
    timings = Timings() if timings is None else timings
    run_config = {} if verbose else QUIET
    with timings.phase("sensor evaluation"):
        sensor = defs.get_repository_def().get_sensor_def(RAW_SENSOR)
        # No cursor: everything in raw/ now is processed, including files whose earlier run
        # failed.
        context = dg.build_sensor_context(
            instance=instance, resources=defs.resources, sensor_name=RAW_SENSOR
        )
        # quiet: the sensor's warnings (files outside every dataset folder) are the caller's
        with contextlib.nullcontext() if verbose else _logging_disabled(logging.WARNING):
            result = sensor(context)
        assert isinstance(result, dg.SensorResult)
    notifier = (defs.resources or {})["notifier"]
    assert isinstance(notifier, Notifier)
    reports: list[FileReport] = []
    for request in result.run_requests or []:
        assert request.job_name, "the raw sensor names the job of every request"
        with timings.phase("ingest runs"):
            run_reports = ingest_run(
                instance,
                defs,
                job_name=request.job_name,
                partition_key=request.partition_key,
                run_config={**run_config, **dict(request.run_config)},
                tags=request.tags,
            )
        with timings.phase("notifications"):
            for report in run_reports:
                notifier.publish(report)
        reports += run_reports
    refresh_after(
        instance, defs, reports, run_config=run_config, timings=timings, kpi_reports=kpi_reports
    )
    return reports


def refresh_after(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    reports: Sequence[FileReport],
    *,
    run_config: Mapping[str, Any],
    timings: Timings,
    kpi_reports: list[KpiReport] | None,
) -> None:
    """After loads: the KPI tables they touched, refreshed (their reports added to
    ``kpi_reports``), then every catalog entry."""
    loaded = {r.dataset for r in reports if r.success and not r.skipped}
    kpis = [n.table for kpi, n in ((k, kpi_names(k)) for k in KPIS.values())
            if any(source.dataset in loaded for source in kpi.inputs)]  # fmt: skip
    if kpis:
        with timings.phase("KPI refresh run"):
            run = defs.resolve_job_def(KPI_JOB).execute_in_process(
                instance=instance,
                asset_selection=kpis,
                run_config=run_config,
                raise_on_error=False,
            )
        if kpi_reports is not None:
            kpi_reports += kpi_reports_from_events(run.success, run.all_events)
    # Always: a refresh that an earlier ingest did not finish (a crash) is made good now; only
    # for the tables that exist (the others have no entry to make: a step each saved).
    with timings.phase("catalog refresh run"):
        lake = (defs.resources or {})["lake"]
        assert isinstance(lake, LakeResource)
        existing = [
            catalog_key(spec) for spec in table_specs() if lake_has_table(lake.lake(), spec.name)
        ]
        if existing:
            defs.resolve_job_def(CATALOG_JOB).execute_in_process(
                instance=instance,
                asset_selection=existing,
                run_config=run_config,
                raise_on_error=True,
            )


def ingest_run(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    *,
    job_name: str,
    partition_key: str | None,
    run_config: Mapping[str, Any],
    tags: Mapping[str, str],
) -> list[FileReport]:
    """One ingest run in this process: a report per file it took."""
    run = defs.resolve_job_def(job_name).execute_in_process(
        partition_key=partition_key,
        instance=instance,
        tags={**tags, TRIGGER_TAG: "cli"},
        run_config=dict(run_config),
        raise_on_error=False,
    )
    files = run_file_keys(run.dagster_run)
    return reports_from_events(run.dagster_run, run.success, run.all_events, files)


class NotFound(Exception):
    """A file to re-process that is nowhere in the lake, or in no dataset's folder."""


def reprocess(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    file_keys: Sequence[str],
    *,
    verbose: bool = False,
    kpi_reports: list[KpiReport] | None = None,
) -> list[FileReport]:
    """Each file processed again from wherever it is (``raw/``, ``archived/``, ``rejected/``):
    a new delivery of its upload, in a run per dataset and landing day (the partition the run
    shows under). Raises NotFound, before any run, for a file it cannot find."""
    lake = (defs.resources or {})["lake"]
    assert isinstance(lake, LakeResource)
    runs: dict[tuple[str, str], list[str]] = {}
    for file_key in dict.fromkeys(file_keys):
        contract = contract_for_raw_folder(layout.raw_folder(file_key))
        if contract is None:
            folders = ", ".join(c.raw_folder for c in CONTRACTS.values())
            raise NotFound(f"{file_key}: not in a dataset's folder ({folders})")
        try:
            _, upload = locate_source(lake.lake(), file_key)
        except FileSkipped as gone:
            raise NotFound(str(gone)) from None
        job = defs.resolve_job_def(names_of(contract).ingest_job)
        days = job.partitions_def
        assert isinstance(days, dg.TimeWindowPartitionsDefinition)
        day = day_partition(days, landing_day(upload.landed_at))
        runs.setdefault((contract.name, day), []).append(file_key)
    reports: list[FileReport] = []
    for (dataset, day), files in runs.items():
        config = {**({} if verbose else QUIET), **ingest_run_config(CONTRACTS[dataset], files)}
        job_name = names_of(dataset).ingest_job
        reports += ingest_run(
            instance,
            defs,
            job_name=job_name,
            partition_key=day,
            run_config=config,
            tags={FILES_TAG: str(len(files))},
        )
    quiet = {} if verbose else QUIET
    refresh_after(
        instance, defs, reports, run_config=quiet, timings=Timings(), kpi_reports=kpi_reports
    )
    return reports


def maintain(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    specs: Sequence[TableSpec],
    *,
    retention_hours: int | None = None,
    verbose: bool = False,
) -> list[MaintenanceLine]:
    """The maintenance job, for the tables of ``specs``, in this process: a line per table."""
    ops = {maintenance_op(spec): {"config": {"retention_hours": retention_hours}} for spec in specs}
    run = defs.resolve_job_def(MAINTENANCE_JOB).execute_in_process(
        instance=instance,
        op_selection=list(ops),
        run_config={**({} if verbose else QUIET), "ops": ops},
        tags={TRIGGER_TAG: "cli"},
        raise_on_error=False,
    )
    return maintenance_lines(specs, run.all_events)


def latest_checks(instance: dg.DagsterInstance, defs: dg.Definitions) -> dict[str, dict[str, str]]:
    """Per table, each of its checks' latest outcome the instance recorded: passed, failed,
    pending (planned by a run not finished: queued or running) or not run (planned by a run
    that ended without evaluating it: a step failed or was skipped)."""
    outcomes: dict[str, dict[str, str]] = {}
    for key in defs.resolve_asset_graph().asset_check_keys:
        record = instance.get_latest_asset_check_evaluation_record(key)
        if record is not None:
            table = key.asset_key.to_user_string()
            status = str(record.status.value)  # PLANNED, SUCCEEDED or FAILED
            outcomes.setdefault(table, {})[key.name] = check_outcome(
                instance, status, record.run_id
            )
    return outcomes


def check_outcome(instance: dg.DagsterInstance, status: str, run_id: str) -> str:
    """A check's outcome from its latest record's status and the run that recorded it."""
    if status in EVALUATED:
        return EVALUATED[status]
    run = instance.get_run_by_id(run_id)  # planned: by a run still going, or one that ended
    return RUNNING if run is not None and not run.is_finished else NOT_RUN


EVALUATED = {"SUCCEEDED": PASSED, "FAILED": FAILED}
