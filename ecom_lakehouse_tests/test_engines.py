"""Both engines make the same table: the Spark job's Delta MERGE (Spark 3.5.4 and Delta 3.3.0,
the versions AWS Glue 5.0 runs) and delta-rs, fed the same validated batches, end with the same
rows, schema, partitions and recorded uploads; and each continues a table the other wrote.

Validation is the same code for both (the local engine's, as in production: the Spark job reads
the validated batch the ``<dataset>_validated`` asset wrote); what differs is the commit."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from deltalake import DeltaTable

from ecom_lakehouse.contracts import CONTRACTS, LOADED_AT, DatasetContract
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.pipeline import validate_batch
from ecom_lakehouse.core.sql.duckdb_sql import connect
from ecom_lakehouse.generators.transactions import generate
from ecom_lakehouse.spark.batch import prepare, read_uploads, read_validated
from ecom_lakehouse.spark.job import TABLES
from ecom_lakehouse_tests.conftest import land, shared_file
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order
from ecom_lakehouse_tests.test_evolution import WITH_COUPON
from ecom_lakehouse_tests.test_worked_example import family

ORDERS = CONTRACTS["orders"]
ENGINES = ("delta-rs", "spark")


def merge_validated(spark, lake: Lake, contract: DatasetContract, batch: str, *, engine: str):
    """A validated batch merged by ``engine`` as the Spark job does (``spark/job.py``'s tables,
    on the batch ``prepare`` makes)."""
    rows = read_validated(spark, lake.url(layout.validated_batch_key(contract.name, batch)))
    uploads = read_uploads(spark, lake.url(layout.batch_manifest_key(contract.name, batch)))
    return TABLES[engine](spark, lake.uri).merge(contract, prepare(rows, contract), uploads)


def merged(
    spark, lake: Lake, contract: DatasetContract, keys: Sequence[str], batch: str, *, engine: str
):
    """Landed files validated as a batch (the local engine's validation, as the asset does),
    then merged by ``engine``."""
    validate_batch(lake, contract, list(keys), batch)
    return merge_validated(spark, lake, contract, batch, engine=engine)


def table_state(lake: Lake, contract: DatasetContract) -> dict:
    """What must be equal: the rows (``_loaded_at`` aside: when), the schema as the log says
    it, the partition columns and the uploads recorded (app id and version)."""
    uri = lake.url(layout.table_path(contract.name))
    table = DeltaTable(uri, storage_options=lake.storage_options())
    metadata = table.metadata()
    con = connect(lake)
    try:
        rows = con.sql(
            f"SELECT * EXCLUDE ({LOADED_AT}) FROM delta_scan('{uri}') ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    schema = [
        (f["name"], f["type"], f["nullable"])
        for f in json.loads(table.schema().to_json())["fields"]
    ]
    protocol = table.protocol()
    return {
        "rows": rows,
        "protocol": (protocol.min_reader_version, protocol.min_writer_version),
        "properties": metadata.configuration,
        "schema": sorted(schema),
        "partitions": metadata.partition_columns,
        "uploads": recorded_uploads(lake, contract),
    }


def recorded_uploads(lake: Lake, contract: DatasetContract) -> dict[str, int]:
    """The newest version recorded per app id, read from the log's files (any engine's)."""
    found: dict[str, int] = {}
    for info in lake.list(f"{layout.table_path(contract.name)}/_delta_log/"):
        if info.key.endswith(".json"):
            for line in lake.read(info.key)[0].decode().splitlines():
                txn = json.loads(line).get("txn")
                if txn:
                    found[txn["appId"]] = max(found.get(txn["appId"], 0), txn["version"])
    return found


def both_engines(
    spark, tmp_path: Path, batches: Sequence[tuple[DatasetContract, list[tuple[str, bytes]]]]
) -> dict[str, dict]:
    """The same batches (a contract and the files to land, each merged as a batch, in order)
    through each engine. Each batch is validated once and each engine merges a copy of it, so
    the uploads (their ETags and landing times) are the same ones."""
    staging = tmp_path / "validated"
    for number, (contract, files) in enumerate(batches):
        keys = [land(Lake(str(staging)), contract.raw_folder, data, name) for name, data in files]
        validate_batch(Lake(str(staging)), contract, [k.removeprefix("raw/") for k in keys],
                       f"batch-{number}")  # fmt: skip
    states = {}
    for engine in ENGINES:
        shutil.copytree(staging, tmp_path / engine)
        lake = Lake(str(tmp_path / engine))
        for number, (contract, _) in enumerate(batches):
            merge_validated(spark, lake, contract, f"batch-{number}", engine=engine)
        states[engine] = table_state(lake, batches[-1][0])
    return states


def assert_same(states: dict[str, dict]) -> None:
    spark, delta_rs = states["spark"], states["delta-rs"]
    for part in ("schema", "partitions", "protocol", "properties", "uploads", "rows"):
        assert spark[part] == delta_rs[part], part
    assert delta_rs["rows"], "an empty table proves nothing"


def shared(relative: str) -> tuple[str, bytes]:
    path = shared_file(relative)
    return path.name, path.read_bytes()


@pytest.mark.parametrize(
    ("dataset", "files"),
    [
        ("products", ["lab5/products.csv"]),
        ("orders", ["lab5/orders_apr_2025.xlsx"]),
        ("order_items", ["lab5/order_items_apr_2025.xlsx"]),
        ("thelook_products", ["thelook/subset_products.csv"]),
        ("thelook_orders", ["thelook/subset_orders.csv"]),
        ("thelook_order_items", ["thelook/subset_order_items.csv"]),
    ],
)
def test_the_real_files_make_the_same_table_with_either_engine(spark, tmp_path, dataset, files):
    assert_same(both_engines(spark, tmp_path, [(CONTRACTS[dataset], [shared(f) for f in files])]))


def test_a_stream_of_transactions_makes_the_same_table(spark, tmp_path):
    raw = tmp_path / "generated"
    generate(raw, orders=6, days=2, seed=5)
    files = sorted(raw.rglob("*.json"))
    landed = [(p.name, p.read_bytes()) for p in files]
    transactions = CONTRACTS["transactions"]
    half = len(landed) // 2
    batches = [(transactions, landed[:half]), (transactions, landed[half:])]
    assert_same(both_engines(spark, tmp_path, batches))


DAY1, DAY2 = "2025-04-01T10:00:00", "2025-04-02T09:00:00"
HARD_CASES = {
    # a key whose date changes moves partition (one row per key in the whole table)
    "key moves partition": [
        [("a.csv", csv_bytes([ORDERS_HEADER, order(1, DAY1, 5), order(2, DAY1, 6)]))],
        [("b.csv", csv_bytes([ORDERS_HEADER, order(1, DAY2, 7)]))],
    ],
    # an older version arriving later changes nothing (newest wins by order_timestamp)
    "out of order": [
        [("new.csv", csv_bytes([ORDERS_HEADER, order(1, DAY2, 9)]))],
        [("old.csv", csv_bytes([ORDERS_HEADER, order(1, DAY1, 3), order(2, DAY1, 4)]))],
    ],
    # two files of one batch with the same key: the newer wins, once
    "duplicate keys in a batch": [
        [
            ("x.csv", csv_bytes([ORDERS_HEADER, order(1, DAY1, 5), order(2, DAY1, 5)])),
            ("y.csv", csv_bytes([ORDERS_HEADER, order(1, DAY2, 8)])),
        ]
    ],
}


@pytest.mark.parametrize("case", sorted(HARD_CASES))
def test_the_hard_cases_make_the_same_table(spark, tmp_path, case):
    assert_same(both_engines(spark, tmp_path, [(ORDERS, files) for files in HARD_CASES[case]]))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_replayed_upload_is_not_written_again(spark, tmp_path, engine):
    lake = Lake(str(tmp_path))
    key = land(lake, "orders", csv_bytes([ORDERS_HEADER, order(1), order(2)]), "a.csv")
    first = merged(spark, lake, ORDERS, [key.removeprefix("raw/")], "b1", engine=engine)
    before = table_state(lake, ORDERS)
    again = merged(spark, lake, ORDERS, [key.removeprefix("raw/")], "b2", engine=engine)
    assert (first.inserted, again.committed_before) == (2, ("orders/a.csv",))
    assert again.already_committed
    assert table_state(lake, ORDERS) == before


def test_an_evolved_contract_makes_the_same_table(spark, tmp_path):
    before = [("a.csv", csv_bytes([ORDERS_HEADER, order(1), order(2)]))]
    rows = [[*ORDERS_HEADER, "coupon"], [*order(2), "SPRING"], [*order(3), "WINTER"]]
    states = both_engines(
        spark, tmp_path, [(ORDERS, before), (WITH_COUPON, [("b.csv", csv_bytes(rows))])]
    )
    assert_same(states)
    assert ("coupon", "string", True) in states["spark"]["schema"]


def test_each_engine_continues_a_table_the_other_wrote(spark, tmp_path):
    lake = Lake(str(tmp_path))
    days = [DAY1, DAY2, "2025-04-03T08:00:00"]
    # each load updates the key the previous one inserted, on another day (it moves)
    for number, engine in enumerate(["delta-rs", "spark", "delta-rs", "spark"], start=1):
        day = days[number % 3]
        rows = [ORDERS_HEADER, order(number, day, 5 + number), order(number + 1, day, 6)]
        key = land(lake, "orders", csv_bytes(rows), f"{number}.csv")
        merged(spark, lake, ORDERS, [key.removeprefix("raw/")], f"b{number}", engine=engine)
    # a replay of the first upload (delta-rs wrote it) by Spark writes nothing
    assert merged(spark, lake, ORDERS, ["orders/1.csv"], "replay", engine="spark").already_committed
    state = table_state(lake, ORDERS)
    ids = [row[1] for row in state["rows"]]
    assert sorted(ids) == [1, 2, 3, 4, 5]
    assert len(state["uploads"]) == 4


RETAIL_HEADER = ["invoice_no", "stock_code", "quantity", "invoice_date", "customer_id", "country"]


def retail_line(invoice: str, stock: str, quantity: int, when: str) -> list[object]:
    return [invoice, stock, quantity, when, 17850, "United Kingdom"]


def test_a_composite_key_makes_the_same_table(spark, tmp_path):
    """The worked example's invoice lines (key: invoice and product): a key repeated across
    the files of a batch, an older version arriving later, a line moved to another invoice."""
    lines = family()[1]
    batches = [
        (lines, [
            ("a.csv", csv_bytes([RETAIL_HEADER, retail_line("1", "A", 2, DAY1),
                                 retail_line("1", "B", 3, DAY1), retail_line("2", "A", 1, DAY1)])),
            ("b.csv", csv_bytes([RETAIL_HEADER, retail_line("1", "A", 5, DAY2)])),
        ]),
        (lines, [("old.csv", csv_bytes([RETAIL_HEADER, retail_line("1", "A", 9, DAY1),
                                        retail_line("2", "B", 4, DAY1)]))]),
    ]  # fmt: skip
    states = both_engines(spark, tmp_path, batches)
    assert_same(states)
    quantities = {(row[0], row[1]): row[2] for row in states["spark"]["rows"]}
    assert quantities == {("1", "A"): 5, ("1", "B"): 3, ("2", "A"): 1, ("2", "B"): 4}
