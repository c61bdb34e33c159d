"""Resources, chosen per environment in this one place, from environment variables.

``LAKEHOUSE_ENV`` picks the profile: ``local`` (default: DuckDB catalog and checks, the log for
notifications) or ``aws`` (Glue Data Catalog, Athena checks, SNS). ``LAKEHOUSE_URI`` picks the
lake (a local folder by default, or ``s3://bucket``); ``AWS_ENDPOINT_URL`` and ``AWS_REGION``
point every AWS client at one endpoint and region. No credentials live in code: boto3, delta-rs
and DuckDB take them from the environment's usual chain.
"""

import os
from collections.abc import Callable, Mapping

import dagster as dg

from ecom_lakehouse.catalog import CatalogResource, GlueCatalogResource
from ecom_lakehouse.notify import NotifierResource, SnsNotifierResource
from ecom_lakehouse.sql_engines import AthenaEngineResource, SqlEngineResource
from ecom_lakehouse.storage import Lake, normalize_uri

DEFAULT_GLUE_DATABASE = "ecom_lakehouse"


class LakeResource(dg.ConfigurableResource):
    """The bucket (or local folder) every zone lives in."""

    uri: str
    endpoint_url: str | None = None
    region: str | None = None

    def lake(self) -> Lake:
        return Lake(normalize_uri(self.uri), self.endpoint_url, self.region)


def _local(env: Mapping[str, str], lake: Lake) -> dict[str, dg.ConfigurableResource]:
    return {
        "catalog": CatalogResource(),
        "sql": SqlEngineResource(),
        "notifier": NotifierResource(ui_url=env.get("DAGSTER_UI_URL", "http://127.0.0.1:3000")),
    }


def _aws(env: Mapping[str, str], lake: Lake) -> dict[str, dg.ConfigurableResource]:
    aws = {"endpoint_url": lake.endpoint_url, "region": lake.region}
    database = env.get("LAKEHOUSE_GLUE_DATABASE", DEFAULT_GLUE_DATABASE)
    sql: SqlEngineResource = AthenaEngineResource(
        database=database,
        workgroup=env.get("LAKEHOUSE_ATHENA_WORKGROUP", "primary"),
        output_location=env.get("LAKEHOUSE_ATHENA_OUTPUT") or None,
        **aws,
    )
    if env.get("LAKEHOUSE_SQL_ENGINE") == "duckdb":  # Athena cannot run where S3 is not AWS
        sql = SqlEngineResource()
    failure_topic = env.get("LAKEHOUSE_SNS_FAILURE_TOPIC_ARN")
    notifier: NotifierResource = NotifierResource(
        ui_url=env.get("DAGSTER_UI_URL", "http://127.0.0.1:3000")
    )
    if failure_topic:
        notifier = SnsNotifierResource(
            ui_url=notifier.ui_url,
            failure_topic_arn=failure_topic,
            success_topic_arn=env.get("LAKEHOUSE_SNS_SUCCESS_TOPIC_ARN") or None,
            **aws,
        )
    return {
        "catalog": GlueCatalogResource(database=database, **aws),
        "sql": sql,
        "notifier": notifier,
    }


PROFILES: dict[str, Callable[[Mapping[str, str], Lake], dict[str, dg.ConfigurableResource]]] = {
    "local": _local,
    "aws": _aws,
}


class UnknownProfile(ValueError):
    pass


def build_resources(environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    profile = environ.get("LAKEHOUSE_ENV", "local")
    if profile not in PROFILES:
        raise UnknownProfile(f"LAKEHOUSE_ENV={profile!r}: expected one of {sorted(PROFILES)}")
    lake = Lake.from_env(environ)
    return {
        "lake": LakeResource(uri=lake.uri, endpoint_url=lake.endpoint_url, region=lake.region),
        **PROFILES[profile](environ, lake),
    }
