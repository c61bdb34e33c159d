"""``reprocess``: files processed again from wherever they are, a new delivery each."""

from collections.abc import Mapping, Sequence

import dagster as dg

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.landing import landing_day
from ecom_lakehouse.core.pipeline import FileSkipped, locate_source
from ecom_lakehouse.core.sql import duckdb_sql
from ecom_lakehouse.defs.ingest import ingest_run_config
from ecom_lakehouse.defs.sensors import day_partition
from ecom_lakehouse.names import (
    FILES_TAG,
    names_of,
)
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.runner.ingest import ingest_run, refresh_after
from ecom_lakehouse.runner.reports import FileReport, KpiReport
from ecom_lakehouse.runner.session import QUIET, Timings, resource_of


class NotFound(Exception):
    """A file to re-process that is nowhere in the lake, or in no dataset's folder."""


def reprocess(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    file_keys: Sequence[str],
    datasets: Mapping[str, DatasetContract],
    *,
    verbose: bool = False,
    kpi_reports: list[KpiReport] | None = None,
) -> list[FileReport]:
    """Each file processed again from wherever it is (``raw/``, ``archived/``, ``rejected/``):
    a new delivery of its upload, in a run per dataset (of ``datasets``, the ones ``defs``
    were built for) and landing day (the partition the run shows under). Raises NotFound,
    before any run, for a file it cannot find."""
    lake: LakeResource = resource_of(defs, "lake", LakeResource)
    runs: dict[tuple[str, str], list[str]] = {}
    for file_key in dict.fromkeys(file_keys):
        folder = layout.raw_folder(file_key)
        contract = next((c for c in datasets.values() if c.raw_folder == folder), None)
        if contract is None:
            folders = ", ".join(c.raw_folder for c in datasets.values())
            raise NotFound(f"{file_key}: not in a dataset's folder ({folders})")
        try:
            _, upload = locate_source(lake.lake(), file_key)
        except FileSkipped as gone:
            raise NotFound(str(gone)) from None
        job = defs.resolve_job_def(names_of(contract).ingest_job)
        days = job.partitions_def
        if not isinstance(days, dg.TimeWindowPartitionsDefinition):
            raise TypeError(f"{job.name} is not partitioned by landing day: {days!r}")
        day = day_partition(days, landing_day(upload.landed_at))
        runs.setdefault((contract.name, day), []).append(file_key)
    with duckdb_sql.held(lake.lake()):  # the runs share one DuckDB database
        reports: list[FileReport] = []
        for (dataset, day), files in runs.items():
            config = {**({} if verbose else QUIET), **ingest_run_config(datasets[dataset], files)}
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
