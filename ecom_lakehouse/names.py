"""Every Dagster name, derived from a dataset's contract in this one place: asset keys, the
ingest job, the table's pool, the group; and the names shared by the
definitions, the CLI, the notifications and the deployment (sensors, jobs, run tags).

``check_unique`` refuses contracts whose names would collide (two datasets, or two dataset
families, making the same asset key, job or pool).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg

from ecom_lakehouse.contracts import DatasetContract, KpiTable, TableSpec

INGEST_SUFFIX = "_ingest"
RAW_SENSOR = "raw_files_sensor"
AUTOMATION_SENSOR = "automation_sensor"
CATALOG_JOB = "catalog_refresh"
KPI_JOB = "kpi_refresh"
CATALOG_POOL = "catalog"
HISTORY_GROUP = "history"
GENERATOR_JOB = "transactions_generator"
GENERATOR_SCHEDULE = "transactions_generator_schedule"
MAINTENANCE_JOB = "table_maintenance"
MAINTENANCE_SCHEDULE = "table_maintenance_schedule"
FRESHNESS_SENSOR = "freshness_checks_sensor"
FRESHNESS_CHECK = "freshness_check"
FAILED_RUNS_SENSOR = "failed_runs_metric"

# Run tags
FILE_TAG = "ecom_lakehouse/file"  # a run of one file
ETAG_TAG = "ecom_lakehouse/etag"
FILES_TAG = "ecom_lakehouse/files"  # how many files a run took
LANDED_TAG = "ecom_lakehouse/landed"  # the day its files landed (its partition, unless clamped)
TRIGGER_TAG = "ecom_lakehouse/trigger"
DAY_TAG = "dagster/partition"  # Dagster's: a dataset run's landing day


@dataclass(frozen=True)
class DatasetNames:
    dataset: str

    @property
    def group(self) -> str:
        return self.dataset

    @property
    def validated(self) -> dg.AssetKey:
        return dg.AssetKey(f"{self.dataset}_validated")

    @property
    def table(self) -> dg.AssetKey:
        return dg.AssetKey(self.dataset)

    @property
    def archived(self) -> dg.AssetKey:
        return dg.AssetKey(f"{self.dataset}_archived")

    @property
    def catalog(self) -> dg.AssetKey:
        return dg.AssetKey(f"{self.dataset}_catalog")

    @property
    def freshness_check(self) -> dg.AssetCheckKey:
        """The name Dagster's freshness-check factory gives the table's check."""
        return dg.AssetCheckKey(self.table, FRESHNESS_CHECK)

    @property
    def asset_keys(self) -> tuple[dg.AssetKey, ...]:
        return (self.validated, self.table, self.archived, self.catalog)

    @property
    def ingest_job(self) -> str:
        return f"{self.dataset}{INGEST_SUFFIX}"

    @property
    def pool(self) -> str:
        """One writer per Delta table at a time (Spark on Glue commits with a single-driver log
        store); the pool's limit is set in the instance's dagster.yaml."""
        return f"delta_table_{self.dataset}"


@dataclass(frozen=True)
class KpiNames:
    kpi: str
    group: str = "kpis"

    @property
    def table(self) -> dg.AssetKey:
        return dg.AssetKey(self.kpi)

    @property
    def catalog(self) -> dg.AssetKey:
        return dg.AssetKey(f"{self.kpi}_catalog")

    @property
    def pool(self) -> str:
        """One refresh of a KPI table at a time."""
        return f"kpi_{self.kpi}"


def kpi_names(kpi: KpiTable | str) -> KpiNames:
    return KpiNames(kpi if isinstance(kpi, str) else kpi.name)


def catalog_key(spec: TableSpec) -> dg.AssetKey:
    """The catalog entry asset of any table (a dataset's or a KPI's)."""
    return dg.AssetKey(f"{spec.name}_catalog")


def table_key(spec: TableSpec) -> dg.AssetKey:
    return dg.AssetKey(spec.name)


def table_pool(spec: TableSpec) -> str:
    """The pool of the table's writers (its loads or its KPI refreshes): maintenance joins it."""
    return kpi_names(spec.name).pool if isinstance(spec, KpiTable) else names_of(spec.name).pool


def maintenance_op(spec: TableSpec) -> str:
    return f"maintain_{spec.name}"


def names_of(contract: DatasetContract | str) -> DatasetNames:
    return DatasetNames(contract if isinstance(contract, str) else contract.name)


def dataset_of_ingest_job(job_name: str) -> str:
    return job_name.removesuffix(INGEST_SUFFIX)


class NameCollision(ValueError):
    pass


def check_unique(contracts: Iterable[DatasetContract], kpis: Iterable[KpiTable] = ()) -> None:
    """Every asset key, job and pool name is made by one dataset or KPI only."""
    made: Counter[str] = Counter()
    for contract in contracts:
        names = names_of(contract)
        made.update({k.to_user_string() for k in names.asset_keys} | {names.ingest_job, names.pool})
    for kpi in kpis:
        k = kpi_names(kpi)
        made.update({k.table.to_user_string(), k.catalog.to_user_string(), k.pool})
    fixed = {
        RAW_SENSOR,
        AUTOMATION_SENSOR,
        CATALOG_JOB,
        KPI_JOB,
        CATALOG_POOL,
        MAINTENANCE_JOB,
        MAINTENANCE_SCHEDULE,
        FRESHNESS_SENSOR,
        FAILED_RUNS_SENSOR,
    }
    clashes = sorted(name for name, count in made.items() if count > 1 or name in fixed)
    if clashes:
        raise NameCollision(f"two definitions would have the same name: {clashes}")
