"""The real Dagster definitions end to end (sensor evaluation, runs, assets, checks), on a
local folder and again on S3 served by a moto server."""

import io
import json
from datetime import date

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse_tests.conftest import (
    Stack,
    archived_files,
    files_under,
    ingest_job_run,
    land,
    materialized,
    query,
    shared_file,
)
from ecom_lakehouse_tests.files import ITEMS_HEADER, ORDERS_HEADER, csv_bytes, order, xlsx_bytes

COUNTS = (
    "SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM orders),"
    " (SELECT count(*) FROM order_items)"
)


def land_lab5(stack: Stack, items: str = "lab5/order_items_apr_2025.xlsx") -> None:
    land(stack.lake, "products", shared_file("lab5/products.csv"))
    land(stack.lake, "orders", shared_file("lab5/orders_apr_2025.xlsx"))
    land(stack.lake, "order-items", shared_file(items))


def assert_all_loaded(reports) -> None:
    assert [r.error for r in reports if not r.success] == []
    assert [r.failed_checks for r in reports if r.failed_checks] == []


def test_the_real_files_load_completely_and_once(stack, instance):
    land_lab5(stack)
    defs = stack.defs
    reports = ingest(instance, defs)
    assert_all_loaded(reports)
    assert [r.file_key for r in reports] == [
        "products/products.csv",
        "orders/orders_apr_2025.xlsx",
        "order-items/order_items_apr_2025.xlsx",
    ]
    assert query(stack, COUNTS) == [(1000, 7500, 40803)]
    assert files_under(stack.lake, "raw") == []
    assert archived_files(stack.lake) == [
        "order-items/order_items_apr_2025.xlsx",
        "orders/orders_apr_2025.xlsx",
        "products/products.csv",
    ]
    assert files_under(stack.lake, "rejected") == []
    assert {r.checks.get("order_id_references_orders") for r in reports[2:]} == {True}
    items = reports[2].metadata["order_items"]
    assert (items["rows_inserted"], items["rows_updated"]) == (40803, 0)

    # The same files uploaded again: newer uploads of the same rows. Every row now names the
    # new upload; no value and no count changes.
    for key in archived_files(stack.lake):
        data, _ = stack.lake.read(f"archived/{key}")
        folder, name = key.split("/", 1)
        land(stack.lake, folder, data, name)
    again = ingest(instance, defs)
    assert_all_loaded(again)
    assert [(r.metadata[r.dataset]["rows_inserted"], r.metadata[r.dataset]["rows_updated"])
            for r in again] == [(0, 1000), (0, 7500), (0, 40803)]  # fmt: skip
    assert query(stack, COUNTS) == [(1000, 7500, 40803)]
    assert query(stack, "SELECT count(DISTINCT order_id), sum(total_amount) FROM orders") == (
        query(stack, "SELECT count(*), sum(total_amount) FROM orders")
    )
    assert files_under(stack.lake, "raw") == []


def test_shuffled_sheets_give_the_same_table(stack, instance):
    land_lab5(stack, items="lab5-variants/order_items.shuffled-sheets.xlsx")
    assert_all_loaded(ingest(instance, stack.defs))
    assert query(stack, COUNTS) == [(1000, 7500, 40803)]
    assert query(stack, "SELECT DISTINCT date FROM order_items WHERE order_id = 17000") == [
        (date(2025, 4, 15),)
    ]


def test_thirty_daily_csvs_give_the_same_tables(stack, instance):
    land(stack.lake, "products", shared_file("lab5/products.csv"))
    per_day = shared_file("lab5-variants/per-day")
    for path in sorted(per_day.glob("orders/*.csv")):
        land(stack.lake, "orders", path)
    for path in sorted(per_day.glob("order_items/*.csv")):
        land(stack.lake, "order-items", path)
    reports = ingest(instance, stack.defs)
    assert len(reports) == 31
    assert_all_loaded(reports)
    assert query(stack, COUNTS) == [(1000, 7500, 40803)]


def test_bad_files_are_rejected_whole_with_a_reason_and_the_rest_still_load(stack, instance):
    good = xlsx_bytes({"2025-04-01": [ORDERS_HEADER, order(1), order(2)]})
    land(stack.lake, "orders", good, "good.xlsx")
    land(stack.lake, "orders", csv_bytes([["order_id", "amount"], [1, 2]]), "wrong_header.csv")
    land(stack.lake, "orders", good[: len(good) // 3], "corrupt.xlsx")
    land(stack.lake, "orders", b"", "empty.csv")
    land(stack.lake, "orders", b"%PDF-1.4", "scan.pdf")

    reports = {r.file_key: r for r in ingest(instance, stack.defs)}
    assert reports["orders/good.xlsx"].success
    assert {k for k, r in reports.items() if not r.success} == {
        "orders/wrong_header.csv",
        "orders/corrupt.xlsx",
        "orders/empty.csv",
        "orders/scan.pdf",
    }
    assert "missing columns" in reports["orders/wrong_header.csv"].error
    assert reports["orders/wrong_header.csv"].failed_step == "orders_validated"
    assert query(stack, "SELECT count(*) FROM orders") == [(2,)]
    assert files_under(stack.lake, "raw") == []
    assert files_under(stack.lake, "rejected/invalid_schema") == [
        "orders/wrong_header.csv",
        "orders/wrong_header.csv.reason.json",
    ]
    assert files_under(stack.lake, "rejected/unreadable") == [
        "orders/corrupt.xlsx",
        "orders/corrupt.xlsx.reason.json",
        "orders/empty.csv",
        "orders/empty.csv.reason.json",
        "orders/scan.pdf",
        "orders/scan.pdf.reason.json",
    ]
    data, _ = stack.lake.read("rejected/unreadable/orders/empty.csv.reason.json")
    reason = json.loads(data)
    assert (reason["file"], reason["rejection"], reason["reason"]) == (
        "orders/empty.csv",
        "unreadable",
        "the file is empty",
    )


def test_bad_rows_go_to_rejected_records_and_are_kept(stack, instance):
    rows = [ORDERS_HEADER, order(1), order(2, amount=-1), order(3, amount="x"), order(1)]
    land(stack.lake, "orders", csv_bytes(rows), "mixed.csv")
    (report,) = ingest(instance, stack.defs)
    assert report.success
    assert report.metadata["orders_validated"]["rows_rejected"] == 3
    assert files_under(stack.lake, "rejected/records") == ["orders/mixed.csv.parquet"]
    assert query(stack, "SELECT order_id FROM orders") == [(1,)]
    data, _ = stack.lake.read("rejected/records/orders/mixed.csv.parquet")
    rejected = pq.read_table(io.BytesIO(data)).select(["_source_row", "_reason"]).to_pylist()
    assert rejected == [
        {"_source_row": 2, "_reason": "exact duplicate: the same values as row 5"},
        {"_source_row": 3, "_reason": "rule total_amount_positive"},
        {"_source_row": 4, "_reason": "total_amount: not a valid decimal(12,2): x"},
    ]


def test_a_crash_after_the_commit_converges_on_a_rerun(stack, instance):
    land(stack.lake, "orders", csv_bytes([ORDERS_HEADER, order(1), order(2)]), "o.csv")
    defs = stack.defs
    # The run dies after the Delta commit, before the archive step.
    partial = ingest_job_run(
        defs,
        instance,
        "orders",
        ["orders/o.csv"],
        asset_selection=[dg.AssetKey("orders_validated"), dg.AssetKey("orders")],
    )
    assert partial.success
    assert files_under(stack.lake, "raw") == ["orders/o.csv"]  # nothing left raw/ early
    (report,) = ingest(instance, defs)
    assert report.success
    assert report.metadata["orders"]["already_committed"] is True
    assert query(stack, "SELECT count(*) FROM orders") == [(2,)]
    assert files_under(stack.lake, "raw") == []
    assert archived_files(stack.lake) == ["orders/o.csv"]


def test_an_archived_file_can_be_reprocessed_by_its_landing_day(stack, instance):
    land(stack.lake, "orders", csv_bytes([ORDERS_HEADER, order(1), order(2)]), "o.csv")
    defs = stack.defs
    ingest(instance, defs)
    for info in list(stack.lake.list("processed/orders/")):  # the table is lost
        stack.lake.delete(info.key)
    result = ingest_job_run(defs, instance, "orders")
    assert result.success
    assert materialized(result, "orders")["rows_inserted"] == 2
    assert archived_files(stack.lake) == ["orders/o.csv"]


def test_order_items_before_their_orders_load_and_warn(stack, instance):
    items = [ITEMS_HEADER, [1, 10, 7, "", 3, 1, 0, "2025-04-01T10:00:00", "2025-04-01"]]
    land(stack.lake, "order-items", csv_bytes(items), "i.csv")
    (report,) = ingest(instance, stack.defs)
    assert report.success
    assert report.checks == {
        "row_count_reconciles": True,
        "id_unique_and_not_null": True,
        "order_id_references_orders": False,
        "product_id_references_products": False,
    }
    assert "FAILED CHECKS" in report.summary()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_other_formats_land_in_the_same_table(stack, instance, fmt):
    records = [dict(zip(ORDERS_HEADER, order(i), strict=True)) for i in (1, 2)]
    if fmt == "jsonl":
        data = "".join(json.dumps(r) + "\n" for r in records).encode()
    else:
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(records), sink)
        data = sink.getvalue()
    land(stack.lake, "orders", data, f"o.{fmt}")
    (report,) = ingest(instance, stack.defs)
    assert report.success, report.error
    assert query(stack, "SELECT count(*) FROM orders") == [(2,)]
