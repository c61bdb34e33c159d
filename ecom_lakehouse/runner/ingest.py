"""``ingest``: what is in ``raw/`` now, through the real definitions in this process: one
evaluation of the raw sensor, then each run it requests (a batch of files each), then what
follows a load (the KPI tables it touched, the catalog entries)."""

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg

from ecom_lakehouse.core.sql import duckdb_sql
from ecom_lakehouse.core.tables.delta import lake_has_table
from ecom_lakehouse.defs.automation import follows_load
from ecom_lakehouse.defs.reports import (
    kpi_reports_from_events,
    reports_from_events,
    run_file_keys,
)
from ecom_lakehouse.names import (
    CATALOG_JOB,
    KPI_JOB,
    RAW_SENSOR,
    TRIGGER_TAG,
    names_of,
)
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.notifications import Notifier
from ecom_lakehouse.runner.reports import FileReport, KpiReport
from ecom_lakehouse.runner.session import QUIET, Timings, logging_disabled, resource_of


def ingest(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    *,
    verbose: bool = False,
    timings: Timings | None = None,
    kpi_reports: list[KpiReport] | None = None,
) -> list[FileReport]:
    """The files' reports; the KPI tables the loads touched are refreshed after them (their
    reports added to ``kpi_reports``), then every catalog entry. The runs share one DuckDB
    database over the lake (``held``)."""
    lake: LakeResource = resource_of(defs, "lake", LakeResource)
    with duckdb_sql.held(lake.lake()):
        return _ingest(instance, defs, verbose=verbose, timings=timings, kpi_reports=kpi_reports)


def _ingest(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    *,
    verbose: bool,
    timings: Timings | None,
    kpi_reports: list[KpiReport] | None,
) -> list[FileReport]:
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
        with contextlib.nullcontext() if verbose else logging_disabled(logging.WARNING):
            result = sensor(context)
        if not isinstance(result, dg.SensorResult):
            raise TypeError(f"the {RAW_SENSOR} sensor returned {result!r}, not a SensorResult")
    notifier: Notifier = resource_of(defs, "notifier", Notifier)
    reports: list[FileReport] = []
    for request in result.run_requests or []:
        if not request.job_name:
            raise ValueError(f"the {RAW_SENSOR} sensor requested a run of no job: {request}")
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
    """After loads, what follows them (``follows_load``, the daemon's rule too): the KPI
    tables they touched (their reports added to ``kpi_reports``), then the catalog entries."""
    loaded = {names_of(r.dataset).table for r in reports if r.success and not r.skipped}
    following = follows_load(defs, loaded)
    kpi_tables = defs.resolve_job_def(KPI_JOB).asset_layer.selected_asset_keys
    kpis = [key for key in following if key in kpi_tables]
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
    # And every table's entry, not only the loaded ones': a refresh that an earlier ingest did
    # not finish (a crash) is made good now. Only for the tables that exist (the others have
    # no entry to make: a step each saved).
    with timings.phase("catalog refresh run"):
        lake: LakeResource = resource_of(defs, "lake", LakeResource)
        graph = defs.resolve_asset_graph()
        entries = defs.resolve_job_def(CATALOG_JOB).asset_layer.selected_asset_keys
        existing = [  # each entry's tags name its table
            key for key in entries if lake_has_table(lake.lake(), graph.get(key).tags["table"])
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
