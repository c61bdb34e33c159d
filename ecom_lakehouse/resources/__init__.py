"""Resources, chosen per environment in this one place, from environment variables.

``LAKEHOUSE_ENV`` picks the profile: ``local`` (default: DuckDB catalog and checks, the log for
notifications, delta-rs merges) or ``aws`` (Glue Data Catalog, Athena checks, SNS, merges as
the Spark job on Glue). ``LAKEHOUSE_MERGE_ENGINE`` (``local``, ``glue``, ``emr-serverless``)
overrides the merge engine of either profile. ``LAKEHOUSE_URI`` picks the
lake (a local folder by default, or ``s3://bucket``); ``AWS_ENDPOINT_URL`` and ``AWS_REGION``
point every AWS client at one endpoint and region. No credentials live in code: boto3, delta-rs
and DuckDB take them from the environment's usual chain.
"""

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

import dagster as dg

from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.resources.catalogs import DuckDbCatalog, GlueCatalog
from ecom_lakehouse.resources.kpi_sinks import DynamoDbKpiSink, KpiSink, NoKpiSink
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.merge_engines import (
    DeltaRsMergeEngine,
    EmrServerlessMergeEngine,
    GlueMergeEngine,
    MergeEngine,
)
from ecom_lakehouse.resources.metrics import CloudWatchMetrics, NoMetrics
from ecom_lakehouse.resources.notifications import LogNotifier, Notifier, SnsNotifier
from ecom_lakehouse.resources.settings import ResourceSettings, Settings
from ecom_lakehouse.resources.sql_engines import AthenaSqlEngine, DuckDbSqlEngine, SqlEngine


def _local(settings: ResourceSettings, lake: Lake) -> dict[str, dg.ConfigurableResource]:
    catalog = settings.duckdb_catalog
    return {
        "catalog": DuckDbCatalog(path=str(catalog) if catalog else None),
        "sql": DuckDbSqlEngine(),
        "notifier": LogNotifier(ui_url=settings.ui_url),
        "kpi_sink": NoKpiSink(),
        "metrics": NoMetrics(),
    }


def _aws(settings: ResourceSettings, lake: Lake) -> dict[str, dg.ConfigurableResource]:
    aws: dict[str, Any] = {"endpoint_url": lake.endpoint_url, "region": lake.region}
    sql: SqlEngine = AthenaSqlEngine(
        database=settings.glue_database,
        workgroup=settings.athena_workgroup,
        output_location=settings.athena_output,
        **aws,
    )
    if settings.sql_engine == "duckdb":  # Athena cannot run where S3 is not AWS
        sql = DuckDbSqlEngine()
    notifier: Notifier = LogNotifier(ui_url=settings.ui_url)
    if settings.sns_failure_topic_arn:
        notifier = SnsNotifier(
            ui_url=settings.ui_url,
            failure_topic_arn=settings.sns_failure_topic_arn,
            success_topic_arn=settings.sns_success_topic_arn,
            **aws,
        )
    kpi_sink: KpiSink = (
        DynamoDbKpiSink(tables=dict(settings.kpi_tables), **aws)
        if settings.kpi_tables
        else NoKpiSink()
    )
    return {
        "catalog": GlueCatalog(database=settings.glue_database, **aws),
        "sql": sql,
        "notifier": notifier,
        "kpi_sink": kpi_sink,
        "metrics": CloudWatchMetrics(**aws),
    }


class MissingSetting(ValueError):
    pass


def _setting(settings: ResourceSettings, name: str, engine: str) -> str:
    value = settings.engine_variables.get(name)
    if not value:
        raise MissingSetting(
            f"LAKEHOUSE_MERGE_ENGINE={engine} needs {name} (or set LAKEHOUSE_MERGE_ENGINE=local)"
        )
    return value


def _spark_settings(settings: ResourceSettings, lake: Lake, engine: str) -> dict[str, Any]:
    return {
        "scripts_uri": _setting(settings, "LAKEHOUSE_SPARK_SCRIPTS_URI", engine),
        "tables": settings.spark_tables,
        "endpoint_url": lake.endpoint_url,
        "region": lake.region,
    }


def _pipes_bucket(settings: ResourceSettings, lake: Lake) -> str:
    """Where Pipes context and messages go for Glue: the lake's bucket unless set apart."""
    if settings.engine_variables.get("LAKEHOUSE_PIPES_BUCKET") or not lake.is_s3:
        return _setting(settings, "LAKEHOUSE_PIPES_BUCKET", "glue")
    return urlparse(lake.uri).netloc


MERGE_ENGINES: dict[str, Callable[[ResourceSettings, Lake], MergeEngine]] = {
    "local": lambda settings, lake: DeltaRsMergeEngine(),
    "glue": lambda settings, lake: GlueMergeEngine(
        job_name=_setting(settings, "LAKEHOUSE_GLUE_JOB_NAME", "glue"),
        pipes_bucket=_pipes_bucket(settings, lake),
        **_spark_settings(settings, lake, "glue"),
    ),
    "emr-serverless": lambda settings, lake: EmrServerlessMergeEngine(
        application_id=_setting(settings, "LAKEHOUSE_EMR_APPLICATION_ID", "emr-serverless"),
        execution_role_arn=_setting(settings, "LAKEHOUSE_EMR_EXECUTION_ROLE_ARN", "emr-serverless"),
        log_group=settings.emr_log_group,
        **_spark_settings(settings, lake, "emr-serverless"),
    ),
}
DEFAULT_MERGE_ENGINE = {"local": "local", "aws": "glue"}


PROFILES: dict[str, Callable[[ResourceSettings, Lake], dict[str, dg.ConfigurableResource]]] = {
    "local": _local,
    "aws": _aws,
}


class UnknownProfile(ValueError):
    pass


def build_resources(
    settings: Settings | Mapping[str, str] | None = None,
) -> dict[str, dg.ConfigurableResource]:
    """Every resource, for ``settings`` (or the environment a mapping describes; default:
    this process's, read here)."""
    if not isinstance(settings, Settings):
        settings = Settings.from_env(settings)
    if settings.profile not in PROFILES:
        raise UnknownProfile(
            f"LAKEHOUSE_ENV={settings.profile!r}: expected one of {sorted(PROFILES)}"
        )
    engine = settings.merge_engine or DEFAULT_MERGE_ENGINE[settings.profile]
    if engine not in MERGE_ENGINES:
        raise UnknownProfile(
            f"LAKEHOUSE_MERGE_ENGINE={engine!r}: expected one of {sorted(MERGE_ENGINES)}"
        )
    lake = settings.lake
    return {
        "lake": LakeResource.of(lake, from_process_env=settings.lake_from_process_env),
        "merge_engine": MERGE_ENGINES[engine](settings.resources, lake),
        **PROFILES[settings.profile](settings.resources, lake),
    }
