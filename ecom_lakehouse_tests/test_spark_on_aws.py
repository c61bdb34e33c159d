"""A Pipes round trip with the Glue launcher: the Dagster asset starts a Glue job run on a moto
server, and the job's packaged script runs here as Glue would run it (the run's arguments as
its command line, the package on its Python path, Pipes context and messages in an S3 bucket
on moto) on Spark 3.5.4 with Delta 3.3.0, as Glue 5.0: the job's MERGE commits to the Delta
table in the moto bucket through S3A."""

import contextlib
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from deltalake import DeltaTable

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.defs.ingest import ingest_definitions, ingest_run_config, landing_days
from ecom_lakehouse.names import names_of
from ecom_lakehouse.resources import build_resources
from ecom_lakehouse.resources.aws import aws_client
from ecom_lakehouse.resources.merge_engines import EmrServerlessMergeEngine, GlueMergeEngine
from ecom_lakehouse.resources.settings import SensorSettings, lake_from_env
from ecom_lakehouse.spark import package
from ecom_lakehouse_tests.conftest import REGION, TEST_CREDENTIALS, land, materialized, today
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order
from ecom_lakehouse_tests.jvm import spark_confs, submit_args

JOB = "ecom-lakehouse-merge"


class RunsHere:
    """A moto client whose job runs execute here: the job's files fetched from S3 as the
    service would, its script run in a local process with Spark and Delta as the service's."""

    def __init__(self, client: Any, s3: Any, workdir: Path, endpoint_url: str | None) -> None:
        self._client, self._s3, self._workdir = client, s3, workdir
        self.finished: dict[str, subprocess.CompletedProcess] = {}
        self._env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(workdir),
            "AWS_ENDPOINT_URL": endpoint_url or "",
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            # what Glue 5.0 and EMR 7 give the job's SparkSession: Delta, and S3 (the moto server)
            "PYSPARK_SUBMIT_ARGS": submit_args(spark_confs(workdir / "warehouse", endpoint_url)),
        }

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _fetch(self, uri: str) -> Path:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        path = self._workdir / Path(key).name
        path.write_bytes(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return path

    def _run(self, script: Path, package_zip: Path, argv: list[str], env: dict[str, str]):
        # -S: the package comes from its zip, not from this checkout's editable install
        libraries = sysconfig.get_paths()["purelib"]
        return subprocess.run(
            [sys.executable, "-S", str(script), *argv],
            env={**self._env, **env, "PYTHONPATH": f"{package_zip}:{libraries}"},
            cwd=self._workdir, capture_output=True, text=True, timeout=300,
            check=False,  # a failed run is reported as the service would: state FAILED
        )  # fmt: skip


class GlueRunsHere(RunsHere):
    """The moto Glue client, except that a job run executes the job's script in a local
    process: the script and package are fetched from the scripts prefix in S3, as Glue would."""

    def start_job_run(self, **params: Any) -> dict:
        run_id = self._client.start_job_run(**params)["JobRunId"]
        job = self._client.get_job(JobName=params["JobName"])["Job"]
        script = self._fetch(job["Command"]["ScriptLocation"])
        zip_path = self._fetch(params["Arguments"]["--extra-py-files"])
        argv = [x for item in params["Arguments"].items() for x in item]
        self.finished[run_id] = self._run(
            script, zip_path, ["--JOB_NAME", params["JobName"], *argv], {}
        )
        return {"JobRunId": run_id}

    def get_job_run(self, JobName: str, RunId: str) -> dict:
        response = self._client.get_job_run(JobName=JobName, RunId=RunId)
        done = self.finished[RunId]
        if done.returncode != 0:
            response["JobRun"]["JobRunState"] = "FAILED"
            response["JobRun"]["ErrorMessage"] = done.stderr[-3000:]
        return response


class GlueHereEngine(GlueMergeEngine):
    workdir: str

    def client(self, service: str) -> Any:
        client = super().client(service)
        if service != "glue":
            return client
        return GlueRunsHere(client, super().client("s3"), Path(self.workdir), self.endpoint_url)


@pytest.fixture
def glue_env(moto_endpoint: str, tmp_path: Path) -> dict[str, str]:
    bucket = f"glue-{tmp_path.name[-20:].lower().replace('_', '-')}"
    s3 = aws_client("s3", moto_endpoint, REGION)
    s3.create_bucket(Bucket=bucket)
    built = package.build()
    scripts = Lake(f"s3://{bucket}", moto_endpoint, REGION)
    package.upload(scripts, built)
    scripts_uri = built.uri(scripts)
    aws_client("glue", moto_endpoint, REGION).create_job(
        Name=JOB,
        Role="arn:aws:iam::123456789012:role/glue",
        Command={
            "Name": "glueetl",
            "ScriptLocation": f"{scripts_uri}/{package.ENTRY_SCRIPT}",
            "PythonVersion": "3",
        },
        GlueVersion="5.0",
    )
    return {
        "LAKEHOUSE_URI": f"s3://{bucket}",
        "LAKEHOUSE_MERGE_ENGINE": "glue",
        "LAKEHOUSE_GLUE_JOB_NAME": JOB,
        "LAKEHOUSE_SPARK_SCRIPTS_URI": scripts_uri,
        "LAKEHOUSE_PIPES_BUCKET": bucket,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": REGION,
        **TEST_CREDENTIALS,
    }


def test_the_glue_engine_is_chosen_by_configuration_alone(glue_env):
    engine = build_resources(glue_env)["merge_engine"]
    assert isinstance(engine, GlueMergeEngine)
    params = engine.start_job_run_params({"--dataset": "orders"})
    assert params["JobName"] == JOB
    assert params["Arguments"]["--datalake-formats"] == "delta"
    assert "DeltaSparkSessionExtension" in params["Arguments"]["--conf"]
    assert params["Arguments"]["--extra-py-files"].endswith(package.PACKAGE_ZIP)


def merge_one_file_through(resources: dict[str, Any], lake: Lake) -> dict[str, Any]:
    """A two-row orders file validated and merged by ``resources``' merge engine: the table's
    metadata, once the run succeeded with its checks passed and Delta Spark's MERGE committed."""
    day = "2025-04-01T10:00:00"
    key = land(lake, "orders", csv_bytes([ORDERS_HEADER, order(1, day), order(2, day)]), "d.csv")
    file_key = key.removeprefix("raw/")
    contract, n = CONTRACTS["orders"], names_of("orders")
    orders = ingest_definitions(contract, landing_days(SensorSettings.first_landing_day))
    validated, table = orders.get_assets_def(n.validated), orders.get_assets_def(n.table)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [validated, table],
            partition_key=today(),
            run_config=ingest_run_config(contract, [file_key]),
            instance=instance,
            resources=resources,
            raise_on_error=False,
        )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    metadata = materialized(result, "orders")
    assert (metadata["rows_inserted"], metadata["rows_updated"]) == (2, 0)
    assert metadata["engine"] == "spark (spark)"  # Delta Spark's MERGE, reported through Pipes
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"row_count_reconciles": True, "order_id_unique_and_not_null": True}
    delta = DeltaTable(
        lake.url(layout.table_path("orders")), storage_options=lake.storage_options()
    )
    assert sorted(delta.to_pyarrow_table()["order_id"].to_pylist()) == [1, 2]
    (commit,) = [c for c in delta.history() if c["operation"] == "MERGE"]
    assert commit["engineInfo"].startswith("Apache-Spark/3.5.4 Delta-Lake/3.3.0")
    return metadata


def test_a_file_merged_by_the_spark_job_on_glue_reports_back_through_pipes(glue_env, tmp_path):
    resources = build_resources(glue_env)
    engine = resources["merge_engine"]
    settings = {**engine.model_dump(), "message_interval_s": 0.5}
    resources["merge_engine"] = GlueHereEngine(**settings, workdir=str(tmp_path))
    metadata = merge_one_file_through(resources, lake_from_env(glue_env))
    runs = resources["merge_engine"].client("glue").get_job_runs(JobName=JOB)["JobRuns"]
    assert metadata["AWS Glue Job Run ID"] == runs[0]["Id"]
    assert "console.aws.amazon.com/gluestudio" in metadata["AWS Glue Job Run URL"]


class EmrRunsHere(RunsHere):
    """The moto EMR Serverless client, except that a job run executes the launch it names
    here, as EMR Serverless would: the entry point and ``--py-files`` package fetched from S3,
    the entry point's arguments as its command line, the driver's environment from the
    ``spark.emr-serverless.driverEnv.*`` confs (Pipes' parameters among them), and the
    driver's stdout and stderr put into the job's CloudWatch log streams, where Pipes reads its
    messages (and the log)."""

    def __init__(self, emr: Any, s3: Any, logs: Any, workdir: Path, endpoint_url: str | None):
        super().__init__(emr, s3, workdir, endpoint_url)
        self._logs = logs

    def start_job_run(self, **params: Any) -> dict:
        started = self._client.start_job_run(**params)
        driver = params["jobDriver"]["sparkSubmit"]
        submit = driver["sparkSubmitParameters"].split()
        py_files = submit[submit.index("--py-files") + 1]
        prefix = "spark.emr-serverless.driverEnv."
        driver_env = dict(
            conf.removeprefix(prefix).split("=", 1) for conf in submit if conf.startswith(prefix)
        )
        script, package_zip = self._fetch(driver["entryPoint"]), self._fetch(py_files)
        done = self._run(script, package_zip, driver["entryPointArguments"], driver_env)
        self.finished[started["jobRunId"]] = done
        logging = params["configurationOverrides"]["monitoringConfiguration"]
        group = logging["cloudWatchLoggingConfiguration"]["logGroupName"]
        stream = f"/applications/{started['applicationId']}/jobs/{started['jobRunId']}"
        self._put_lines(group, f"{stream}/SPARK_DRIVER/stdout", done.stdout)
        self._put_lines(group, f"{stream}/SPARK_DRIVER/stderr", done.stderr)
        return started

    def _put_lines(self, group: str, stream: str, text: str) -> None:
        with contextlib.suppress(self._logs.exceptions.ResourceAlreadyExistsException):
            self._logs.create_log_group(logGroupName=group)
        self._logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in text.splitlines() if line]
        if events:
            self._logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    def get_job_run(self, applicationId: str, jobRunId: str) -> dict:
        response = self._client.get_job_run(applicationId=applicationId, jobRunId=jobRunId)
        done = self.finished[jobRunId]
        response["jobRun"]["state"] = "SUCCESS" if done.returncode == 0 else "FAILED"
        response["jobRun"]["stateDetails"] = done.stderr[-3000:]
        return response

    def get_application(self, applicationId: str) -> dict:
        # moto says "SPARK"; EMR Serverless says "Spark", which dagster-aws's client reads
        response = self._client.get_application(applicationId=applicationId)
        response["application"]["type"] = response["application"]["type"].capitalize()
        return response

    def get_dashboard_for_job_run(self, **_: Any) -> dict:
        return {"url": "https://emr-serverless.example/dashboard"}


class EmrHereEngine(EmrServerlessMergeEngine):
    workdir: str

    def client(self, service: str) -> Any:
        client = super().client(service)
        if service != "emr-serverless":
            return client
        s3, logs = super().client("s3"), super().client("logs")
        return EmrRunsHere(client, s3, logs, Path(self.workdir), self.endpoint_url)


def test_a_file_merged_by_the_spark_job_on_emr_serverless_reports_back_through_pipes(
    moto_endpoint, tmp_path
):
    bucket = f"emr-{tmp_path.name[-20:].lower().replace('_', '-')}"
    aws_client("s3", moto_endpoint, REGION).create_bucket(Bucket=bucket)
    scripts, built = Lake(f"s3://{bucket}", moto_endpoint, REGION), package.build()
    package.upload(scripts, built)
    emr = aws_client("emr-serverless", moto_endpoint, REGION)
    application = emr.create_application(name="lake", releaseLabel="emr-7.5.0", type="SPARK")
    env = {
        "LAKEHOUSE_URI": f"s3://{bucket}",
        "LAKEHOUSE_MERGE_ENGINE": "emr-serverless",
        "LAKEHOUSE_EMR_APPLICATION_ID": application["applicationId"],
        "LAKEHOUSE_EMR_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/emr",
        "LAKEHOUSE_SPARK_SCRIPTS_URI": built.uri(scripts),
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": REGION,
        **TEST_CREDENTIALS,
    }
    resources = build_resources(env)
    launched = resources["merge_engine"]
    assert isinstance(launched, EmrServerlessMergeEngine)
    resources["merge_engine"] = EmrHereEngine(**launched.model_dump(), workdir=str(tmp_path))
    merge_one_file_through(resources, lake_from_env(env))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"LAKEHOUSE_MERGE_ENGINE": "spark"},
            "expected one of ['emr-serverless', 'glue', 'local']",
        ),
        ({"LAKEHOUSE_MERGE_ENGINE": "glue"}, "needs LAKEHOUSE_GLUE_JOB_NAME"),
        ({"LAKEHOUSE_ENV": "aws", "LAKEHOUSE_URI": "s3://b"}, "glue needs LAKEHOUSE_GLUE_JOB_NAME"),
    ],
)
def test_a_missing_or_unknown_engine_setting_says_what_to_set(env, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build_resources(env)
