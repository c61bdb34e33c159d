"""The Spark engine: its batch logic on local pyspark (same rows as the local engine), its
MERGE statement through Spark's own SQL parser, and its package."""

import io
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.pipeline import load_batch, validate_batch
from ecom_lakehouse.core.tables.evolution import SchemaChangeRefused
from ecom_lakehouse.core.tables.merge_spec import KeyRange, merge_statement
from ecom_lakehouse.spark import package
from ecom_lakehouse.spark.batch import BatchRejected, prepare, read_uploads, read_validated
from ecom_lakehouse.spark.tables import (
    SOURCE_VIEW,
    as_arrow,
    create_table_statement,
    evolve_table,
)
from ecom_lakehouse_tests.conftest import REGION, land, shared_file
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order

ORDERS = CONTRACTS["orders"]


def validated(lake: Lake, dataset: str, *file_keys: str) -> tuple[str, pa.Table]:
    """Landed files through the local engine's validation, as one batch: its validated
    Parquet's URI and the rows the local engine would merge."""
    batch = validate_batch(lake, CONTRACTS[dataset], file_keys, "batch")
    return lake.url(batch.key), pq.read_table(io.BytesIO(lake.read(batch.key)[0]))


def rows(table: pa.Table, dataset: str) -> list[tuple]:
    contract = CONTRACTS[dataset]
    typed = table.select(list(contract.validated_column_names)).cast(contract.arrow_schema)
    return sorted(tuple(r.values()) for r in typed.to_pylist())


@pytest.mark.parametrize(
    ("dataset", "relative"),
    [
        ("products", "lab5/products.csv"),
        ("orders", "lab5/orders_apr_2025.xlsx"),
        ("order_items", "lab5/order_items_apr_2025.xlsx"),
    ],
)
def test_the_spark_batch_is_the_local_engines_batch(spark, tmp_path, dataset, relative):
    lake = Lake(str(tmp_path))
    contract = CONTRACTS[dataset]
    file_key = land(lake, contract.raw_folder, shared_file(relative)).removeprefix("raw/")
    uri, local = validated(lake, dataset, file_key)
    batch = prepare(read_validated(spark, uri), contract)
    assert rows(as_arrow(batch), dataset) == rows(local, dataset)
    assert len(local) > 0
    (upload,) = read_uploads(spark, lake.url(layout.batch_manifest_key(dataset, "batch")))
    assert upload.file_key == file_key and upload.etag == lake.head(f"raw/{file_key}").etag


def test_several_files_in_one_batch_end_as_loading_them_one_by_one(spark, tmp_path):
    lake = Lake(str(tmp_path))
    day = "2025-04-01T10:00:00"
    first = land(
        lake, "orders", csv_bytes([ORDERS_HEADER, order(1, day, 5), order(2, day, 6)]), "a.csv"
    )
    second = land(
        lake, "orders", csv_bytes([ORDERS_HEADER, order(2, day, 7), order(3, day, 8)]), "b.csv"
    )
    keys = [first.removeprefix("raw/"), second.removeprefix("raw/")]
    for key in keys:  # each in a batch of its own, through the local engine
        validate_batch(lake, ORDERS, [key], key.replace("/", "-"))
        load_batch(lake, ORDERS, key.replace("/", "-"))
    from deltalake import DeltaTable

    one_by_one = DeltaTable(lake.url(layout.table_path("orders"))).to_pyarrow_table()
    uri, _ = validated(lake, "orders", *keys)
    together = as_arrow(prepare(read_validated(spark, uri), ORDERS))
    assert rows(together, "orders") == rows(one_by_one, "orders")
    amounts = dict(
        zip(together["order_id"].to_pylist(), together["total_amount"].to_pylist(), strict=True)
    )
    assert amounts == {1: Decimal("5.00"), 2: Decimal("7.00"), 3: Decimal("8.00")}


def test_rows_that_break_the_contract_fail_the_batch_whole(spark, tmp_path):
    broken = pa.table(
        {
            "order_num": [1, 1],
            "order_id": [1, None],
            "user_id": [7, 7],
            "order_timestamp": pa.array(
                [datetime(1970, 1, 1, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")
            ),
            "total_amount": pa.array([Decimal("-1.00"), Decimal("2.00")], pa.decimal128(12, 2)),
            "date": pa.array([date(1970, 1, 1)] * 2),
            "_source_file": ["orders/broken.csv"] * 2,
            "_source_version": [1, 1],
        }
    )
    path = tmp_path / "broken.parquet"
    pq.write_table(broken, path)
    with pytest.raises(BatchRejected) as error:
        prepare(read_validated(spark, str(path)), ORDERS).collect()
    message = str(error.value)
    assert "order_id: required: 1" in message
    assert "rule total_amount_positive: 1" in message
    assert "rule order_timestamp_in_range: 2" in message


def test_the_merge_statement_is_spark_sql_on_the_key_alone_with_pruning_literals(spark):
    sql = merge_statement(
        ORDERS, "delta.`s3://lake/processed/orders`", SOURCE_VIEW, KeyRange(10000, 17499)
    )
    plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(sql).toString()
    assert plan.startswith("'MergeIntoTable")
    # one row per key: a key whose date changes is matched, and its row moves
    match = sql.split(" WHEN ")[0].split(" ON ")[1]
    assert match.startswith("t.order_id = s.order_id") and "date" not in match
    assert "BETWEEN 10000 AND 17499" in sql
    # newest wins: the sequence, then the upload's version, then the source file
    assert (
        sql.index("s.order_timestamp >")
        < sql.index("s._source_version >")
        < sql.index("s._source_file >=")
    )


@pytest.mark.parametrize("dataset", sorted(CONTRACTS))
def test_the_table_ddl_makes_the_contracts_delta_table(spark, tmp_path, dataset):
    contract = CONTRACTS[dataset]
    ref = f"delta.`{tmp_path}/{dataset}`"
    spark.sql(create_table_statement(contract, ref))
    columns = [
        (f.name, f.dataType.simpleString()) for f in spark.sql(f"SELECT * FROM {ref}").schema
    ]
    assert columns == [(c.name, c.glue_type) for c in contract.table_columns]
    detail = spark.sql(f"DESCRIBE DETAIL {ref}").first()
    assert detail is not None
    assert detail["partitionColumns"] == ([contract.partition_by] if contract.partition_by else [])


def test_the_spark_job_adds_the_columns_a_contract_gained_and_refuses_a_changed_type(
    spark, tmp_path
):
    from ecom_lakehouse_tests.test_evolution import COUPON, WITH_COUPON

    ref = f"delta.`{tmp_path}/orders`"
    spark.sql(create_table_statement(ORDERS, ref))
    spark.sql(f"ALTER TABLE {ref} UNSET TBLPROPERTIES ('delta.enableChangeDataFeed')")
    assert evolve_table(spark, WITH_COUPON, ref) == [COUPON]
    assert spark.sql(f"SELECT * FROM {ref}").schema["coupon"].dataType.simpleString() == "string"
    properties = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {ref}").collect()}
    assert properties["delta.enableChangeDataFeed"] == "true"  # set again where missing
    assert evolve_table(spark, WITH_COUPON, ref) == []
    wider = replace(ORDERS.column("total_amount"), type="decimal(18,2)")
    changed = replace(ORDERS, columns=tuple(wider if c.name == wider.name else c
                                            for c in ORDERS.columns))  # fmt: skip
    with pytest.raises(SchemaChangeRefused, match=r"total_amount is decimal\(12,2\) in the"):
        evolve_table(spark, changed, ref)


def test_the_package_is_versioned_by_content_and_imports_from_its_zip(tmp_path, moto_endpoint):
    built = package.build()
    assert package.build().version == built.version  # no build time in the bytes
    zip_path = tmp_path / package.PACKAGE_ZIP
    zip_path.write_bytes(built.files[package.PACKAGE_ZIP])
    names = zipfile.ZipFile(zip_path).namelist()
    assert "ecom_lakehouse/spark/job.py" in names and "ecom_lakehouse/contracts/model.py" in names
    # -S: no site hooks, so this checkout's editable install cannot answer the import; the
    # libraries come from site-packages, after the zip, as on a cluster
    libraries = sysconfig.get_paths()["purelib"]
    where = subprocess.run(
        [sys.executable, "-S", "-c", "import ecom_lakehouse.spark.job as j; print(j.__file__)"],
        env={"PYTHONPATH": f"{zip_path}:{libraries}", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(zip_path))

    from ecom_lakehouse.resources.aws import aws_client

    bucket = "scripts-test"
    aws_client("s3", moto_endpoint, REGION).create_bucket(Bucket=bucket)
    lake = Lake(f"s3://{bucket}", moto_endpoint, REGION)
    written = package.upload(lake, built)
    assert written == [
        f"scripts/{built.version}/{package.PACKAGE_ZIP}",
        f"scripts/{built.version}/{package.ENTRY_SCRIPT}",
    ]
    assert package.upload(lake, built) == []  # a version is written once
    assert built.uri(lake) == f"s3://{bucket}/scripts/{built.version}"
