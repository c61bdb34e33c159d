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
from ecom_lakehouse.resources.settings import duckdb_catalog_path, environment, lake_from_env
from ecom_lakehouse.resources.sql_engines import AthenaSqlEngine, DuckDbSqlEngine, SqlEngine

DEFAULT_GLUE_DATABASE = "ecom_lakehouse"
EMR_LOG_GROUP = "/aws/emr-serverless/ecom-lakehouse"  # the analytics stack's, for its default name
DEFAULT_UI_URL = "http://127.0.0.1:3000"


def _local(env: Mapping[str, str], lake: Lake) -> dict[str, dg.ConfigurableResource]:
    return {
        "catalog": DuckDbCatalog(path=str(path) if (path := duckdb_catalog_path(env)) else None),
        "sql": DuckDbSqlEngine(),
        "notifier": LogNotifier(ui_url=env.get("DAGSTER_UI_URL", DEFAULT_UI_URL)),
        "kpi_sink": NoKpiSink(),
        "metrics": NoMetrics(),
    }


def _aws(env: Mapping[str, str], lake: Lake) -> dict[str, dg.ConfigurableResource]:
    aws: dict[str, Any] = {"endpoint_url": lake.endpoint_url, "region": lake.region}
    database = env.get("LAKEHOUSE_GLUE_DATABASE", DEFAULT_GLUE_DATABASE)
    sql: SqlEngine = AthenaSqlEngine(
        database=database,
        workgroup=env.get("LAKEHOUSE_ATHENA_WORKGROUP", "primary"),
        output_location=env.get("LAKEHOUSE_ATHENA_OUTPUT") or None,
        **aws,
    )
    if env.get("LAKEHOUSE_SQL_ENGINE") == "duckdb":  # Athena cannot run where S3 is not AWS
        sql = DuckDbSqlEngine()
    ui_url = env.get("DAGSTER_UI_URL", DEFAULT_UI_URL)
    failure_topic = env.get("LAKEHOUSE_SNS_FAILURE_TOPIC_ARN")
    notifier: Notifier = LogNotifier(ui_url=ui_url)
    if failure_topic:
        notifier = SnsNotifier(
            ui_url=ui_url,
            failure_topic_arn=failure_topic,
            success_topic_arn=env.get("LAKEHOUSE_SNS_SUCCESS_TOPIC_ARN") or None,
            **aws,
        )
    kpi_tables = {kpi: env[name] for kpi, name in KPI_TABLE_SETTINGS.items() if env.get(name)}
    kpi_sink: KpiSink = DynamoDbKpiSink(tables=kpi_tables, **aws) if kpi_tables else NoKpiSink()
    return {
        "catalog": GlueCatalog(database=database, **aws),
        "sql": sql,
        "notifier": notifier,
        "kpi_sink": kpi_sink,
        "metrics": CloudWatchMetrics(**aws),
    }


# The DynamoDB table each KPI table is pushed to (aws), by the variable that names it.
KPI_TABLE_SETTINGS = {
    "order_kpis_daily": "LAKEHOUSE_KPI_ORDER_TABLE",
    "category_kpis": "LAKEHOUSE_KPI_CATEGORY_TABLE",
}


class MissingSetting(ValueError):
    pass


def _setting(env: Mapping[str, str], name: str, engine: str) -> str:
    value = env.get(name)
    if not value:
        raise MissingSetting(
            f"LAKEHOUSE_MERGE_ENGINE={engine} needs {name} (or set LAKEHOUSE_MERGE_ENGINE=local)"
        )
    return value


def _spark_settings(env: Mapping[str, str], lake: Lake, engine: str) -> dict[str, Any]:
    return {
        "scripts_uri": _setting(env, "LAKEHOUSE_SPARK_SCRIPTS_URI", engine),
        "tables": env.get("LAKEHOUSE_SPARK_TABLES", "spark"),
        "endpoint_url": lake.endpoint_url,
        "region": lake.region,
    }


def _pipes_bucket(env: Mapping[str, str], lake: Lake) -> str:
    """Where Pipes context and messages go for Glue: the lake's bucket unless set apart."""
    if env.get("LAKEHOUSE_PIPES_BUCKET") or not lake.is_s3:
        return _setting(env, "LAKEHOUSE_PIPES_BUCKET", "glue")
    return urlparse(lake.uri).netloc


MERGE_ENGINES: dict[str, Callable[[Mapping[str, str], Lake], MergeEngine]] = {
    "local": lambda env, lake: DeltaRsMergeEngine(),
    "glue": lambda env, lake: GlueMergeEngine(
        job_name=_setting(env, "LAKEHOUSE_GLUE_JOB_NAME", "glue"),
        pipes_bucket=_pipes_bucket(env, lake),
        **_spark_settings(env, lake, "glue"),
    ),
    "emr-serverless": lambda env, lake: EmrServerlessMergeEngine(
        application_id=_setting(env, "LAKEHOUSE_EMR_APPLICATION_ID", "emr-serverless"),
        execution_role_arn=_setting(env, "LAKEHOUSE_EMR_EXECUTION_ROLE_ARN", "emr-serverless"),
        log_group=env.get("LAKEHOUSE_EMR_LOG_GROUP") or EMR_LOG_GROUP,
        **_spark_settings(env, lake, "emr-serverless"),
    ),
}
DEFAULT_MERGE_ENGINE = {"local": "local", "aws": "glue"}


PROFILES: dict[str, Callable[[Mapping[str, str], Lake], dict[str, dg.ConfigurableResource]]] = {
    "local": _local,
    "aws": _aws,
}


class UnknownProfile(ValueError):
    pass


def build_resources(environ: Mapping[str, str] | None = None) -> dict[str, dg.ConfigurableResource]:
    """Every resource, for the environment ``environ`` describes (default: this process's)."""
    env = environment(environ)
    profile = env.get("LAKEHOUSE_ENV", "local")
    if profile not in PROFILES:
        raise UnknownProfile(f"LAKEHOUSE_ENV={profile!r}: expected one of {sorted(PROFILES)}")
    lake = lake_from_env(env)
    engine = env.get("LAKEHOUSE_MERGE_ENGINE") or DEFAULT_MERGE_ENGINE[profile]
    if engine not in MERGE_ENGINES:
        raise UnknownProfile(
            f"LAKEHOUSE_MERGE_ENGINE={engine!r}: expected one of {sorted(MERGE_ENGINES)}"
        )
    return {
        "lake": LakeResource.of(lake, from_process_env=environ is None),
        "merge_engine": MERGE_ENGINES[engine](env, lake),
        **PROFILES[profile](env, lake),
    }
