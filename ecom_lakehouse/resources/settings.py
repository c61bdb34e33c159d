"""Everything the environment configures, read in this one place.

``build_resources`` (in this package) turns the settings into resources; ``build_defs`` gives
the rest (sensor intervals, ...) to the definitions that need them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ecom_lakehouse.core.lake.storage import DEFAULT_LAKE, Lake, S3Credentials, normalize_uri
from ecom_lakehouse.core.read.readers import ReadLimits


def environment(environ: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """The mapping to read: the one given (tests), else the process's environment."""
    return os.environ if environ is None else environ


def lake_from_env(environ: Mapping[str, str] | None = None) -> Lake:
    env = environment(environ)
    key_id = env.get("AWS_ACCESS_KEY_ID")
    return Lake(
        uri=normalize_uri(env.get("LAKEHOUSE_URI") or DEFAULT_LAKE),
        endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        credentials=S3Credentials(
            key_id, env.get("AWS_SECRET_ACCESS_KEY", ""), env.get("AWS_SESSION_TOKEN") or None
        )
        if key_id
        else None,
    )


def duckdb_catalog_path(environ: Mapping[str, str]) -> Path | None:
    """``LAKEHOUSE_DUCKDB_CATALOG``: a local file for the catalog instead of the lake's own
    ``catalog/lakehouse.duckdb``."""
    configured = environ.get("LAKEHOUSE_DUCKDB_CATALOG")
    return Path(configured).resolve() if configured else None


@dataclass(frozen=True)
class SensorSettings:
    # The least time between two evaluations of the raw sensor. Dagster's daemon visits
    # sensors in a 5 s loop and counts the interval from when the last tick ended: at 5, every
    # other visit found less than 5 s elapsed and skipped, so a landing waited up to ~10 s for
    # the sensor. At 1, the sensor runs on every visit (one LIST of raw/ per ~5 s).
    interval_seconds: int = 1
    # How far behind its high-water mark the sensor looks again (late-visible objects).
    lookback_seconds: int = 900
    # The least time between two evaluations of the automation conditions (catalog entries,
    # KPI tables): like the raw sensor's, on every visit of the daemon by default.
    automation_interval_seconds: int = 1
    # How many of the files waiting in one dataset folder an ingest run takes at most, and how
    # many bytes (like Auto Loader's maxFilesPerTrigger / maxBytesPerTrigger, and its default
    # of 1000 files); a file larger than the byte cap is a batch of its own.
    max_files_per_run: int = 1000
    max_bytes_per_run: int = 256 * 1024 * 1024
    # The first landing day (UTC) of the dataset assets' partitions: a file that landed
    # before it is a run of that first day.
    first_landing_day: str = "2025-01-01"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SensorSettings:
        env = environment(environ)
        return cls(
            interval_seconds=int(env.get("LAKEHOUSE_SENSOR_INTERVAL_SECONDS", "1")),
            lookback_seconds=int(env.get("LAKEHOUSE_SENSOR_LOOKBACK_SECONDS", "900")),
            automation_interval_seconds=int(env.get("LAKEHOUSE_AUTOMATION_INTERVAL_SECONDS", "1")),
            max_files_per_run=max(
                1, int(env.get("LAKEHOUSE_MAX_FILES_PER_RUN", cls.max_files_per_run))
            ),
            max_bytes_per_run=int(env.get("LAKEHOUSE_MAX_BYTES_PER_RUN", cls.max_bytes_per_run)),
            first_landing_day=env.get("LAKEHOUSE_FIRST_LANDING_DAY", cls.first_landing_day),
        )


@dataclass(frozen=True)
class GeneratorSettings:
    """The transactions generator's schedule: a demo's stream, so stopped unless the
    environment starts it (``make run`` does); it can be started from the UI too."""

    cron: str = "*/5 * * * *"
    files_per_tick: int = 1
    transactions_per_file: int = 1
    running: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GeneratorSettings:
        env = environment(environ)
        return cls(
            cron=env.get("LAKEHOUSE_TRANSACTIONS_CRON", cls.cron),
            files_per_tick=int(env.get("LAKEHOUSE_TRANSACTIONS_FILES_PER_TICK", "1")),
            transactions_per_file=int(env.get("LAKEHOUSE_TRANSACTIONS_PER_FILE", "1")),
            running=env.get("LAKEHOUSE_TRANSACTIONS_GENERATOR", "stopped") == "running",
        )


@dataclass(frozen=True)
class MaintenanceSettings:
    """When every table is compacted, checkpointed and vacuumed: nightly unless the
    environment says (``LAKEHOUSE_MAINTENANCE_CRON``, UTC); ``LAKEHOUSE_MAINTENANCE=stopped``
    leaves the schedule off (it can be started from the UI)."""

    cron: str = "0 3 * * *"
    running: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MaintenanceSettings:
        env = environment(environ)
        return cls(
            cron=env.get("LAKEHOUSE_MAINTENANCE_CRON", cls.cron),
            running=env.get("LAKEHOUSE_MAINTENANCE", "running") != "stopped",
        )


def physical_memory() -> int:
    """This machine's memory, in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def read_limits(environ: Mapping[str, str] | None = None) -> ReadLimits:
    """The most a landed file may hold to be read here (``LAKEHOUSE_MAX_FILE_BYTES``: its
    size uncompressed; ``LAKEHOUSE_MAX_FILE_ROWS``; 0 lifts a limit). By default sized to the
    machine: a file's reading peaks at a few times its uncompressed size, so an eighth of the
    memory each (3 GB on 24 GB), and a row per 256 bytes of memory."""
    env, memory = environment(environ), physical_memory()

    def limit(name: str, default: int) -> int | None:
        value = int(env.get(name, default))
        return value or None

    return ReadLimits(
        max_rows=limit("LAKEHOUSE_MAX_FILE_ROWS", memory // 256),
        max_bytes=limit("LAKEHOUSE_MAX_FILE_BYTES", memory // 8),
    )


def dagster_home(environ: Mapping[str, str] | None = None) -> str | None:
    """Dagster's instance folder, when set (the CLI then records its runs there)."""
    return environment(environ).get("DAGSTER_HOME") or None


def debug(environ: Mapping[str, str] | None = None) -> bool:
    """``ECOM_LAKEHOUSE_DEBUG=1``: the CLI shows tracebacks of unexpected errors."""
    return bool(environment(environ).get("ECOM_LAKEHOUSE_DEBUG"))


DEFAULT_UI_URL = "http://127.0.0.1:3000"
DEFAULT_GLUE_DATABASE = "ecom_lakehouse"
EMR_LOG_GROUP = "/aws/emr-serverless/ecom-lakehouse"  # the analytics stack's, for its default name
# The DynamoDB table each KPI table is pushed to (aws), by the variable that names it.
KPI_TABLE_SETTINGS = {
    "order_kpis_daily": "LAKEHOUSE_KPI_ORDER_TABLE",
    "category_kpis": "LAKEHOUSE_KPI_CATEGORY_TABLE",
}


@dataclass(frozen=True)
class ResourceSettings:
    """What the resources of a profile are made of (``build_resources``). A variable a merge
    engine needs is checked when that engine is built, saying which variable is missing."""

    ui_url: str = DEFAULT_UI_URL  # DAGSTER_UI_URL: links in notifications
    duckdb_catalog: Path | None = None
    glue_database: str = DEFAULT_GLUE_DATABASE
    athena_workgroup: str = "primary"
    athena_output: str | None = None
    sql_engine: str | None = None  # "duckdb": DuckDB in the aws profile (S3 that is not AWS)
    sns_failure_topic_arn: str | None = None
    sns_success_topic_arn: str | None = None
    kpi_tables: Mapping[str, str] = field(default_factory=dict)  # KPI table -> DynamoDB table
    # by the variable's name, the merge engines' settings that have no default
    engine_variables: Mapping[str, str] = field(default_factory=dict)
    spark_tables: str = "spark"
    emr_log_group: str = EMR_LOG_GROUP

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ResourceSettings:
        return cls(
            ui_url=env.get("DAGSTER_UI_URL", DEFAULT_UI_URL),
            duckdb_catalog=duckdb_catalog_path(env),
            glue_database=env.get("LAKEHOUSE_GLUE_DATABASE", DEFAULT_GLUE_DATABASE),
            athena_workgroup=env.get("LAKEHOUSE_ATHENA_WORKGROUP", "primary"),
            athena_output=env.get("LAKEHOUSE_ATHENA_OUTPUT") or None,
            sql_engine=env.get("LAKEHOUSE_SQL_ENGINE") or None,
            sns_failure_topic_arn=env.get("LAKEHOUSE_SNS_FAILURE_TOPIC_ARN") or None,
            sns_success_topic_arn=env.get("LAKEHOUSE_SNS_SUCCESS_TOPIC_ARN") or None,
            kpi_tables={
                kpi: env[name] for kpi, name in KPI_TABLE_SETTINGS.items() if env.get(name)
            },
            engine_variables={name: env[name] for name in ENGINE_VARIABLES if env.get(name)},
            spark_tables=env.get("LAKEHOUSE_SPARK_TABLES", "spark"),
            emr_log_group=env.get("LAKEHOUSE_EMR_LOG_GROUP") or EMR_LOG_GROUP,
        )


ENGINE_VARIABLES = (
    "LAKEHOUSE_SPARK_SCRIPTS_URI",
    "LAKEHOUSE_GLUE_JOB_NAME",
    "LAKEHOUSE_PIPES_BUCKET",
    "LAKEHOUSE_EMR_APPLICATION_ID",
    "LAKEHOUSE_EMR_EXECUTION_ROLE_ARN",
)


@dataclass(frozen=True)
class Settings:
    """Everything the environment configures, read once, at the top (``build_defs``), and
    passed down: each part of the definitions takes its section, ``build_resources`` the lake,
    the profile, the merge engine and ``resources``."""

    lake: Lake
    lake_from_process_env: bool  # its credentials are resolved in the run (``dg.EnvVar``)
    profile: str  # LAKEHOUSE_ENV: local or aws
    merge_engine: str | None  # LAKEHOUSE_MERGE_ENGINE, else the profile's
    sensor: SensorSettings
    generator: GeneratorSettings
    maintenance: MaintenanceSettings
    limits: ReadLimits
    resources: ResourceSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = environment(environ)
        return cls(
            lake=lake_from_env(env),
            lake_from_process_env=environ is None,
            profile=env.get("LAKEHOUSE_ENV", "local"),
            merge_engine=env.get("LAKEHOUSE_MERGE_ENGINE") or None,
            sensor=SensorSettings.from_env(env),
            generator=GeneratorSettings.from_env(env),
            maintenance=MaintenanceSettings.from_env(env),
            limits=read_limits(env),
            resources=ResourceSettings.from_env(env),
        )
