"""The AWS profile against a moto server: Glue catalog entries, Athena checks, SNS
notifications, the sensor on a large S3 prefix, and the CLI on an s3:// lake."""

import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from deltalake import DeltaTable

from ecom_lakehouse.contracts import CONTRACTS, table_specs
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.landing import RawCursor, scan
from ecom_lakehouse.core.pipeline import batch_uploads, validate_batch
from ecom_lakehouse.core.sql.checks import render, table_checks
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.generators import transactions
from ecom_lakehouse.resources import build_resources
from ecom_lakehouse.resources.sql_engines import AthenaSqlEngine
from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse_tests.conftest import (
    REGION,
    archived_files,
    files_under,
    ingest_job_run,
    land,
    query,
    s3_stack,
    shared_file,
    sqs_messages,
)
from ecom_lakehouse_tests.files import PRODUCTS_HEADER, csv_bytes

LOOKBACK = timedelta(minutes=15)


def test_lab5_on_s3_ends_as_delta_tables_glue_entries_and_archives(moto_endpoint, instance):
    stack = s3_stack(moto_endpoint)
    land(stack.lake, "products", shared_file("lab5/products.csv"))
    land(stack.lake, "orders", shared_file("lab5/orders_apr_2025.xlsx"))
    land(stack.lake, "order-items", shared_file("lab5/order_items_apr_2025.xlsx"))
    land(stack.lake, "orders", b"order_id,amount\n1,2\n", "broken.csv")
    reports = {r.file_key: r for r in ingest(instance, stack.defs)}
    assert {k for k, r in reports.items() if not r.success} == {"orders/broken.csv"}

    for dataset, rows in (("products", 1000), ("orders", 7500), ("order_items", 40803)):
        uri = stack.lake.url(layout.table_path(dataset))
        table = DeltaTable(uri, storage_options=stack.lake.storage_options())
        assert table.to_pyarrow_dataset().count_rows() == rows

    glue = stack.client("glue")
    database = stack.env["LAKEHOUSE_GLUE_DATABASE"]
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    # the datasets' tables, the KPI tables computed from them, and the load history
    assert sorted(tables) == [
        "department_sales_daily",
        "load_history",
        "order_items",
        "orders",
        "products",
        "sales_daily",
    ]
    for name, table in tables.items():
        assert table["StorageDescriptor"]["Location"] == f"{stack.lake.uri}/processed/{name}/"
        assert table["Parameters"]["table_type"] == "DELTA"
        assert table["Parameters"]["spark.sql.sources.provider"] == "delta"
    assert [k["Name"] for k in tables["orders"]["PartitionKeys"]] == ["date"]
    assert tables["products"]["PartitionKeys"] == []
    assert ("total_amount", "decimal(12,2)") in [
        (c["Name"], c["Type"]) for c in tables["orders"]["StorageDescriptor"]["Columns"]
    ]

    assert archived_files(stack.lake) == [
        "order-items/order_items_apr_2025.xlsx",
        "orders/orders_apr_2025.xlsx",
        "products/products.csv",
    ]
    assert files_under(stack.lake, "raw") == []
    (message,) = sqs_messages(stack)
    assert message["Subject"] == "[ecom-lakehouse] REJECTED: orders/broken.csv"
    assert "Failed asset: orders_validated" in message["Message"]
    assert "missing columns" in message["Message"]
    assert "/runs/" in message["Message"]
    # analysts' view: the Glue entries, read through DuckDB
    assert query(stack, "SELECT count(*) FROM order_items") == [(40803,)]


def test_the_catalog_entry_is_updated_only_when_it_differs(moto_endpoint):
    stack = s3_stack(moto_endpoint)
    catalog = build_resources(stack.env)["catalog"]
    products = CONTRACTS["products"]
    assert catalog.register(stack.lake, products, table_specs())["action"] == "created"
    assert catalog.register(stack.lake, products, table_specs())["action"] == "unchanged"
    glue = stack.client("glue")
    database = stack.env["LAKEHOUSE_GLUE_DATABASE"]
    stale = catalog.table_input(stack.lake, products)
    stale["StorageDescriptor"]["Location"] = "s3://elsewhere/"
    glue.update_table(DatabaseName=database, TableInput=stale)
    assert catalog.register(stack.lake, products, table_specs())["action"] == "updated"
    table = glue.get_table(DatabaseName=database, Name="products")["Table"]
    assert table["StorageDescriptor"]["Location"] == f"{stack.lake.uri}/processed/products/"


def test_writers_registering_one_table_at_once_all_succeed(moto_endpoint):
    """Concurrent ingests each register the table: the ones that lose the create race update
    or keep the winner's entry instead of failing their run."""
    stack = s3_stack(moto_endpoint)
    catalog = build_resources(stack.env)["catalog"]
    products = CONTRACTS["products"]
    start = threading.Barrier(12)

    def register(_: int) -> str:
        start.wait()
        return catalog.register(stack.lake, products, table_specs())["action"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        actions = list(pool.map(register, range(12)))
    assert actions.count("created") == 1, actions
    assert set(actions) <= {"created", "unchanged", "updated"}


def queue_athena_results(endpoint: str, values: list[int]) -> None:
    results = [
        {"rows": [{"Data": [{"VarCharValue": "_col0"}]}, {"Data": [{"VarCharValue": str(v)}]}]}
        for v in values
    ]
    request = urllib.request.Request(
        f"{endpoint}/moto-api/static/athena/query-results",
        data=json.dumps({"region": REGION, "results": results}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert urllib.request.urlopen(request).status == 201


def test_checks_run_on_athena_in_a_workgroup_with_a_result_location(moto_endpoint, instance):
    stack = s3_stack(moto_endpoint)
    env = {**stack.env, "LAKEHOUSE_ATHENA_WORKGROUP": "lakehouse"}
    del env["LAKEHOUSE_SQL_ENGINE"]  # the aws profile's default: Athena
    athena = stack.client("athena")
    athena.create_work_group(Name="lakehouse")
    defs = build_defs(env)
    assert isinstance(defs.resources["sql"], AthenaSqlEngine)
    land(stack.lake, "products", csv_bytes([PRODUCTS_HEADER, [1, 2, "Books", "A"]]), "p.csv")
    # moto accepts Athena queries without running them: it answers from a queue we fill.
    queue_athena_results(moto_endpoint, [0, 3])
    (report,) = ingest(instance, defs)
    assert report.success
    assert report.checks == {"row_count_reconciles": True, "product_id_unique_and_not_null": False}
    ids = athena.list_query_executions(WorkGroup="lakehouse")["QueryExecutionIds"]
    executions = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
    database = env["LAKEHOUSE_GLUE_DATABASE"]
    assert sorted(e["Query"] for e in executions) == sorted(
        render(check, lambda ds: f'"{database}"."{ds}"', expected_rows=1)
        for check in table_checks(CONTRACTS["products"])
    )
    for execution in executions:
        assert execution["WorkGroup"] == "lakehouse"
        assert execution["QueryExecutionContext"]["Database"] == database
        location = execution["ResultConfiguration"]["OutputLocation"]
        assert (
            location == f"{stack.lake.uri}/athena-query-results/{execution['QueryExecutionId']}.csv"
        )


def test_a_rejected_file_reaches_the_failure_topic_though_its_run_succeeded(
    moto_endpoint, instance
):
    # a batch run rejects a file and goes on with the others, so the run succeeds; the person
    # still hears about the rejected file on the failure topic
    stack = s3_stack(moto_endpoint)
    defs = stack.defs
    land(stack.lake, "orders", b"not,a,header\n", "bad.csv")
    result = ingest_job_run(
        defs,
        instance,
        "orders",
        ["orders/bad.csv"],
        tags={"ecom_lakehouse/file": "orders/bad.csv"},
        raise_on_error=False,
    )
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    success = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS)
    sensor = defs.get_repository_def().get_sensor_def("file_success_notifier")
    context = dg.build_run_status_sensor_context(
        sensor_name="file_success_notifier",
        dagster_event=success,
        dagster_instance=instance,
        dagster_run=run,
        resources=defs.resources,
    )
    sensor(context)
    (message,) = sqs_messages(stack)
    assert message["Subject"] == "[ecom-lakehouse] REJECTED: orders/bad.csv"
    assert f"/runs/{result.run_id}" in message["Message"]
    assert "(invalid_schema): header does not match" in message["Message"]


def test_the_sensor_lists_past_one_page_of_keys_and_stays_cheap(moto_endpoint):
    stack = s3_stack(moto_endpoint)
    s3 = stack.client("s3")
    bucket = stack.lake.uri.removeprefix("s3://")
    for i in range(1005):
        s3.put_object(Bucket=bucket, Key=f"raw/orders/o{i:04}.csv", Body=b"x")
    tick = scan(stack.lake.list(layout.RAW), RawCursor(), LOOKBACK, list(CONTRACTS.values()))
    assert len(tick.new_files) == 1005
    assert len({f.upload.file_key for f in tick.new_files}) == 1005
    # the next tick over the same listing requests nothing, from a cursor of bounded size
    assert (
        scan(stack.lake.list(layout.RAW), tick.cursor, LOOKBACK, list(CONTRACTS.values())).new_files
        == []
    )
    s3.put_object(Bucket=bucket, Key="raw/orders/o0007.csv", Body=b"changed")
    (reupload,) = scan(
        stack.lake.list(layout.RAW), tick.cursor, LOOKBACK, list(CONTRACTS.values())
    ).new_files
    assert reupload.upload.file_key == "orders/o0007.csv"


def test_the_cli_works_unchanged_on_an_s3_lake_from_any_folder(moto_endpoint, tmp_path):
    cli = str(Path(sys.executable).parent / "ecom-lakehouse")
    generated = subprocess.run(
        [cli, "generate", str(tmp_path / "raw"), "--orders", "60", "--products", "20"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert generated.returncode == 0
    for profile in ("local", "aws"):
        stack = s3_stack(moto_endpoint)
        for path in (tmp_path / "raw").rglob("*.*"):
            land(stack.lake, path.parent.name, path)
        env = {
            **os.environ,
            "LAKEHOUSE_URI": stack.lake.uri,
            "AWS_ENDPOINT_URL": moto_endpoint,
            "AWS_REGION": REGION,
        }
        if profile == "aws":
            env.update({k: v for k, v in stack.env.items() if k.startswith("LAKEHOUSE_")})
        env.pop("DAGSTER_HOME", None)
        # ingest from one folder, query from another: the catalog follows the lake
        here, there = tmp_path / profile / "here", tmp_path / profile / "there"
        here.mkdir(parents=True), there.mkdir(parents=True)
        run = subprocess.run(
            [cli, "ingest"], env=env, cwd=here, capture_output=True, text=True, check=False
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "3 file(s) loaded, 0 rejected, 0 failed" in run.stdout
        result = subprocess.run(
            [cli, "query", "SELECT count(*) AS n FROM orders", "--format", "csv"],
            env=env, cwd=there, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert list(here.iterdir()) == list(there.iterdir()) == []  # nothing written locally
        assert (profile, result.stdout, result.stderr) == (profile, "n\n60\n", "")


def test_a_validated_batch_names_each_files_upload_as_s3_listed_it(moto_endpoint):
    stack = s3_stack(moto_endpoint)
    contract = CONTRACTS["products"]
    keys = [
        land(stack.lake, "products", csv_bytes([PRODUCTS_HEADER, [i, 1, "d", "p"]]), f"{i}.csv")
        for i in (1, 2)
    ]
    file_keys = [k.removeprefix("raw/") for k in keys]
    validated = validate_batch(stack.lake, contract, file_keys, "run-1")
    assert batch_uploads(stack.lake, contract, "run-1") == validated.uploads
    assert [u.etag for u in validated.uploads] == [stack.lake.head(k).etag for k in keys]


def test_a_stream_of_transaction_files_on_s3_is_one_batch_and_a_glue_table(moto_endpoint, instance):
    stack = s3_stack(moto_endpoint)
    with tempfile.TemporaryDirectory() as folder:
        transactions.generate(Path(folder), orders=25, days=1, seed=4)
        for path in sorted(Path(folder).rglob("*.json")):
            stack.lake.write(f"raw/{path.relative_to(folder)}", path.read_bytes())
    reports = ingest(instance, stack.defs)
    assert len(reports) == 25 and all(r.success for r in reports)
    (run,) = [r for r in instance.get_runs() if r.job_name == "transactions_ingest"]
    assert run.tags["ecom_lakehouse/files"] == "25"
    glue = stack.client("glue")
    table = glue.get_table(DatabaseName=stack.env["LAKEHOUSE_GLUE_DATABASE"], Name="transactions")
    table = table["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["transaction_date"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert ("total_amount", "decimal(12,2)") in columns
    assert ("day_of_week", "int") in columns
    assert query(stack, "SELECT count(*), count(DISTINCT transaction_id) FROM transactions") == [
        (25, 25)
    ]
    # the load's figures went to CloudWatch, per dataset
    cloudwatch = stack.client("cloudwatch")
    dimension = [{"Name": "Dataset", "Value": "transactions"}]
    named = cloudwatch.list_metrics(Namespace="EcomLakehouse", Dimensions=dimension)["Metrics"]
    assert {"RowsRead", "RowsInserted", "LoadSeconds", "LagSecondsMax"} <= {
        m["MetricName"] for m in named
    }

    def total(metric: str) -> float:
        now = datetime.now(UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace="EcomLakehouse", MetricName=metric, Dimensions=dimension,
            StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5),
            Period=3600, Statistics=["Sum"],
        )["Datapoints"]  # fmt: skip
        return sum(p["Sum"] for p in points)

    assert (total("RowsRead"), total("RowsInserted"), total("RowsRejected")) == (25, 25, 0)
