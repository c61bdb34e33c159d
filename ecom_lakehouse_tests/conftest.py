"""Shared fixtures: a lake (a temporary folder, or a bucket on a moto server started for the
test session), the real Dagster definitions for it, a real Dagster instance, and helpers to
land files in raw/ and to query the lake's catalog."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.defs.ingest import ingest_run_config
from ecom_lakehouse.names import names_of
from ecom_lakehouse.resources import build_resources
from ecom_lakehouse.resources.aws import aws_client
from ecom_lakehouse.resources.settings import lake_from_env

SHARED_DATA = Path(
    os.environ.get("ECOM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
REGION = "us-east-1"
# moto takes any credentials; every client (boto3, obstore, delta-rs, DuckDB) is given these.
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def shared_file(relative: str) -> Path:
    """A real published file, read in place. CI always has them; elsewhere they may be absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must have ../shared/data")
        pytest.skip(f"{path} is not on this machine")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real moto server process: every AWS API over real HTTP, never real AWS."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Credentials for every client in this process (boto3, obstore, delta-rs, DuckDB).
    os.environ.update(TEST_CREDENTIALS)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.2)
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


@dataclass
class Stack:
    """A lake and the environment that selects its resources."""

    kind: str
    lake: Lake
    env: dict[str, str]
    failure_queue_url: str | None = None

    @property
    def defs(self) -> dg.Definitions:
        return build_defs(self.env)

    def client(self, service: str):
        return aws_client(service, self.lake.endpoint_url, REGION)


def local_stack(root: Path) -> Stack:
    root.mkdir(parents=True, exist_ok=True)
    return Stack("local", Lake(str(root)), {"LAKEHOUSE_URI": str(root)})


def s3_stack(endpoint: str) -> Stack:
    """A fresh bucket, Glue database and SNS topic (with an SQS queue to read what it sends)."""
    name = f"lake-{uuid.uuid4().hex[:12]}"
    s3 = aws_client("s3", endpoint, REGION)
    s3.create_bucket(Bucket=name)
    sns, sqs = aws_client("sns", endpoint, REGION), aws_client("sqs", endpoint, REGION)
    topic = sns.create_topic(Name=f"{name}-failures")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"{name}-failures")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    env = {
        "LAKEHOUSE_ENV": "aws",
        "LAKEHOUSE_URI": f"s3://{name}",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        **TEST_CREDENTIALS,
        "LAKEHOUSE_GLUE_DATABASE": name.replace("-", "_"),
        "LAKEHOUSE_SNS_FAILURE_TOPIC_ARN": topic,
        # moto accepts Athena queries but does not run them; the checks' SQL runs on DuckDB
        # over the same S3 objects (the Athena path has its own test).
        "LAKEHOUSE_SQL_ENGINE": "duckdb",
        # Spark cannot reach S3 here (no hadoop-aws jars): the Glue engine has its own test.
        "LAKEHOUSE_MERGE_ENGINE": "local",
    }
    return Stack("s3", lake_from_env(env), env, queue_url)


@pytest.fixture(params=["local", "s3"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Stack:
    if request.param == "local":
        return local_stack(tmp_path / "lake")
    return s3_stack(request.getfixturevalue("moto_endpoint"))


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    path = tmp_path / "lake"
    path.mkdir()
    return path


@pytest.fixture
def defs(lake_dir: Path) -> dg.Definitions:
    return build_defs({"LAKEHOUSE_URI": str(lake_dir)})


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def land(target: Lake | Path, folder: str, source: Path | bytes, name: str | None = None) -> str:
    """Put a file into raw/<folder>/ as an upload would; returns its key."""
    data = source if isinstance(source, bytes) else source.read_bytes()
    name = name or (None if isinstance(source, bytes) else source.name)
    assert name, "bytes need a file name"
    lake = target if isinstance(target, Lake) else Lake(str(target))
    key = f"raw/{folder}/{name}"
    lake.write(key, data)
    return key


def today() -> str:
    """Today's landing day (UTC): the partition of files landed now."""
    return datetime.now(UTC).date().isoformat()


def ingest_job_run(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    dataset: str,
    files: Sequence[str] = (),
    *,
    day: str | None = None,
    **kwargs: Any,
) -> dg.ExecuteInProcessResult:
    """The dataset's ingest job in this process, on ``day`` (default: today), taking ``files``
    (default: every upload that landed that day), as the UI's launchpad or a backfill runs it."""
    contract = CONTRACTS[dataset]
    return defs.resolve_job_def(names_of(contract).ingest_job).execute_in_process(
        partition_key=day or today(),
        run_config=ingest_run_config(contract, files) if files else {},
        instance=instance,
        **kwargs,
    )


def materialized(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    """The metadata values of the run's one materialization of ``asset``."""
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def files_under(target: Lake | Path, zone: str) -> list[str]:
    lake = target if isinstance(target, Lake) else Lake(str(target))
    prefix = zone.rstrip("/") + "/"
    return sorted(info.key.removeprefix(prefix) for info in lake.list(prefix))


def archived_files(target: Lake | Path) -> list[str]:
    """The archived files (on S3 each must have its upload's record beside it; a folder's
    renamed file is its own record)."""
    lake = target if isinstance(target, Lake) else Lake(str(target))
    found = files_under(lake, "archived")
    files = [k for k in found if not k.endswith(".upload.json")]
    records = [f + ".upload.json" for f in files] if not lake.move_keeps_identity else []
    assert sorted(found) == sorted([*files, *records]), found
    return files


def commits_per_upload(lake: Lake, table: str) -> dict[str, int]:
    """How many commits of the table's log recorded each upload's transaction (exactly once
    means 1 each). Read from the log itself, not through any engine."""
    counts: dict[str, int] = {}
    for info in lake.list(f"processed/{table}/_delta_log/"):
        if not info.key.endswith(".json"):
            continue
        for line in lake.read(info.key)[0].decode().splitlines():
            txn = json.loads(line).get("txn")
            if txn:
                counts[txn["appId"]] = counts.get(txn["appId"], 0) + 1
    return counts


def query(target: Stack | Lake, sql: str) -> list[tuple]:
    stack = (
        target
        if isinstance(target, Stack)
        else Stack("local", target, {"LAKEHOUSE_URI": target.uri})
    )
    con = build_resources(stack.env)["catalog"].connect_for_query(stack.lake)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def sqs_messages(stack: Stack) -> list[dict]:
    """The SNS notifications that reached the stack's failure queue."""
    assert stack.failure_queue_url
    sqs = stack.client("sqs")
    messages = []
    while batch := sqs.receive_message(
        QueueUrl=stack.failure_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages"):
        messages += [json.loads(m["Body"]) for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=stack.failure_queue_url, ReceiptHandle=m["ReceiptHandle"])
    return messages


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Local Spark 3.5.4 with Delta Lake 3.3.0, as AWS Glue 5.0 runs the Spark job (the jars
    from the install step's cache: a missing one fails naming it)."""
    from pyspark.sql import SparkSession

    from ecom_lakehouse_tests.jvm import MissingDownload, spark_confs

    try:
        confs = spark_confs(tmp_path_factory.mktemp("spark-warehouse"))
    except MissingDownload as missing:
        pytest.fail(str(missing))
    builder = SparkSession.builder.master("local[1]").appName("ecom-lakehouse-tests")
    for key, value in confs.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    yield session
    session.stop()
