"""Merge engines: how a validated file reaches its Delta table. Chosen by configuration
(``LAKEHOUSE_MERGE_ENGINE``: ``local``, ``glue`` or ``emr-serverless``); the assets call
``MergeEngine.load`` and do not change.

``local`` runs delta-rs in the Dagster process. ``glue`` and ``emr-serverless`` launch the
Spark job (``ecom_lakehouse.spark.job``) through Dagster Pipes; the job reports the
materialization's metadata and the asset checks' results, and the launcher adds the run's id
and console link.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import dagster as dg

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.memory import release_freed_memory
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.pipeline import load_batch
from ecom_lakehouse.core.sql.checks import CheckOutcome, TableCheck, evaluate_checks
from ecom_lakehouse.core.tables.delta import table_row_count
from ecom_lakehouse.core.tables.reporting import load_metadata
from ecom_lakehouse.resources.aws import aws_client
from ecom_lakehouse.resources.sql_engines import SqlEngine
from ecom_lakehouse.spark.package import ENTRY_SCRIPT, PACKAGE_ZIP

# Glue 5 and EMR 7 ship Delta Lake; these confs turn it on in the Spark session.
DELTA_SPARK_CONFS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def check_result(outcome: CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity(outcome.severity),
        metadata=dict(outcome.metadata),
    )


@dataclass(frozen=True)
class Load:
    """One batch's load, as the ``<dataset>`` asset asks for it."""

    lake: Lake
    sql: SqlEngine  # where the checks' SQL runs (the Spark job runs its own)
    contract: DatasetContract
    checks: list[TableCheck]
    batch_id: str  # the validated batch (its rows and its manifest of uploads)


class MergeEngine(dg.ConfigurableResource, ABC):
    """How a batch's validated rows reach their Delta table, every upload of it recorded
    exactly once: the materialization of the ``<dataset>`` asset (rows inserted and updated,
    table version, uploads already committed) with its checks' results."""

    @abstractmethod
    def load(self, context: dg.AssetExecutionContext, load: Load) -> dg.MaterializeResult: ...


class DeltaRsMergeEngine(MergeEngine):
    """delta-rs in the Dagster process; the checks' SQL on the SQL engine resource."""

    def load(self, context: dg.AssetExecutionContext, load: Load) -> dg.MaterializeResult:
        lake, sql = load.lake, load.sql
        uri = lake.url(layout.table_path(load.contract.name))
        rows_before = table_row_count(uri, lake.storage_options()) or 0
        loaded = load_batch(lake, load.contract, load.batch_id, context.run.run_id)
        outcome = loaded.outcome
        if outcome.committed_before:
            context.log.info(
                f"already committed (table version {outcome.table_version}), not written again: "
                f"{', '.join(outcome.committed_before)}"
            )
        # The checks read the table itself: its count must reconcile with this one. What the
        # merge freed goes back first: the checks' scan then peaks no higher than the merge.
        release_freed_memory()
        expected_rows = rows_before + outcome.inserted
        outcomes = evaluate_checks(
            load.checks,
            lambda query: sql.scalar(lake, query),
            lambda dataset: sql.table_ref(lake, dataset),
            expected_rows,
        )
        return dg.MaterializeResult(
            metadata=dict(
                load_metadata(outcome, loaded.uploads, "local (delta-rs)", expected_rows)
            ),
            check_results=[check_result(o) for o in outcomes],
        )


def job_arguments(contract: DatasetContract, lake: Lake, batch_id: str) -> dict[str, str]:
    """The Spark job's own arguments for one validated batch."""
    return {"--dataset": contract.name, "--lakehouse-uri": lake.uri, "--batch-id": batch_id}


class SparkMergeEngine(MergeEngine, ABC):
    """The Spark job (``ecom_lakehouse.spark.job``) launched through Dagster Pipes; the job
    reports the materialization and the checks, the launcher adds the run's id and link."""

    scripts_uri: str  # s3://bucket/scripts/<version>, as `ecom-lakehouse package-spark` prints
    tables: str = "spark"  # "delta-rs" for a Spark without the Delta jars
    endpoint_url: str | None = None
    region: str | None = None

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint_url, self.region)

    def script_uri(self, name: str) -> str:
        return f"{self.scripts_uri.rstrip('/')}/{name}"

    @abstractmethod
    def pipes_client(self) -> Any: ...

    @abstractmethod
    def start_job_run_params(self, arguments: dict[str, str]) -> dict[str, Any]: ...

    def load(self, context: dg.AssetExecutionContext, load: Load) -> dg.MaterializeResult:
        params = self.start_job_run_params(job_arguments(load.contract, load.lake, load.batch_id))
        invocation = self.pipes_client().run(context=context, start_job_run_params=params)
        return invocation.get_materialize_result()


class GlueMergeEngine(SparkMergeEngine):
    """The Spark job on AWS Glue 5 (the default in AWS): Pipes context and messages in S3."""

    job_name: str
    pipes_bucket: str
    message_interval_s: float = 5.0

    def pipes_client(self) -> Any:
        from dagster_aws.pipes import PipesGlueClient, PipesS3ContextInjector

        s3 = self.client("s3")
        return PipesGlueClient(
            client=self.client("glue"),
            context_injector=PipesS3ContextInjector(
                bucket=self.pipes_bucket, client=s3, key_prefix=layout.PIPES
            ),
            message_reader=_pipes_zone_message_reader(
                bucket=self.pipes_bucket, client=s3, interval=self.message_interval_s
            ),
        )

    def start_job_run_params(self, arguments: dict[str, str]) -> dict[str, Any]:
        confs = " --conf ".join(f"{k}={v}" for k, v in DELTA_SPARK_CONFS.items())
        return {
            "JobName": self.job_name,
            "Arguments": {
                **arguments,
                "--tables": self.tables,
                "--pipes": "s3",
                "--extra-py-files": self.script_uri(PACKAGE_ZIP),
                "--datalake-formats": "delta",
                # Glue takes one --conf: the others ride in its value
                "--conf": confs,
                "--additional-python-modules": _pipes_requirement(),
            },
        }


class EmrServerlessMergeEngine(SparkMergeEngine):
    """The Spark job on EMR Serverless 7: Pipes parameters in the driver's environment,
    messages on stdout, read back from CloudWatch."""

    application_id: str
    execution_role_arn: str
    log_group: str

    def pipes_client(self) -> Any:
        from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesEMRServerlessClient

        return PipesEMRServerlessClient(
            client=self.client("emr-serverless"),
            message_reader=PipesCloudWatchMessageReader(client=self.client("logs")),
        )

    def start_job_run_params(self, arguments: dict[str, str]) -> dict[str, Any]:
        confs = "".join(f" --conf {k}={v}" for k, v in DELTA_SPARK_CONFS.items())
        return {
            "applicationId": self.application_id,
            "executionRoleArn": self.execution_role_arn,
            "jobDriver": {
                "sparkSubmit": {
                    "entryPoint": self.script_uri(ENTRY_SCRIPT),
                    "entryPointArguments": [
                        *(x for item in arguments.items() for x in item),
                        *("--tables", self.tables, "--pipes", "env"),
                    ],
                    # EMR 7 ships the Delta jars here
                    "sparkSubmitParameters": (
                        f"--py-files {self.script_uri(PACKAGE_ZIP)}"
                        " --conf spark.jars=/usr/share/aws/delta/lib/delta-spark.jar,"
                        "/usr/share/aws/delta/lib/delta-storage.jar" + confs
                    ),
                }
            },
            "configurationOverrides": {
                "monitoringConfiguration": {
                    "cloudWatchLoggingConfiguration": {
                        "enabled": True,
                        "logGroupName": self.log_group,
                    }
                }
            },
        }


def _pipes_zone_message_reader(**kwargs: Any) -> Any:
    """dagster-aws's S3 message reader, writing under the Pipes zone (its own keys are at the
    bucket's root, which the job's role may not touch)."""
    from collections.abc import Iterator
    from contextlib import contextmanager

    from dagster_aws.pipes import PipesS3MessageReader

    class PipesZoneS3MessageReader(PipesS3MessageReader):
        @contextmanager
        def get_params(self) -> Iterator[dict[str, Any]]:  # type: ignore[override]
            with super().get_params() as params:
                yield {**params, "key_prefix": layout.PIPES + params["key_prefix"]}

    return PipesZoneS3MessageReader(**kwargs)


def _pipes_requirement() -> str:
    from dagster_pipes.version import __version__

    return f"dagster-pipes=={__version__}"
