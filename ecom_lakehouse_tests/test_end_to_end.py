"""The real Dagster definitions on a temporary local lake: sensor evaluation, runs, assets."""

import json
import shutil
from datetime import date

import dagster as dg
import pytest

from ecom_lakehouse.runner import ingest
from ecom_lakehouse_tests.conftest import files_under, land, query, shared_file
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order, xlsx_bytes

COUNTS = "SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM orders), (SELECT count(*) FROM order_items)"  # noqa: E501


def land_lab5(lake_dir, items: str = "lab5/order_items_apr_2025.xlsx") -> None:
    land(lake_dir, "products", shared_file("lab5/products.csv"))
    land(lake_dir, "orders", shared_file("lab5/orders_apr_2025.xlsx"))
    land(lake_dir, "order-items", shared_file(items))


def assert_all_loaded(reports) -> None:
    assert [r.error for r in reports if not r.success] == []
    assert all(all(r.checks.values()) for r in reports), [r.checks for r in reports]


def test_the_real_files_load_completely_and_once(lake_dir, lake, defs, instance):
    land_lab5(lake_dir)
    reports = ingest(instance, defs)
    assert_all_loaded(reports)
    assert [r.file_key for r in reports] == [
        "products/products.csv",
        "orders/orders_apr_2025.xlsx",
        "order-items/order_items_apr_2025.xlsx",
    ]
    assert query(lake, COUNTS) == [(1000, 7500, 40803)]
    assert files_under(lake_dir, "raw") == []
    assert files_under(lake_dir, "archived") == [
        "order-items/order_items_apr_2025.xlsx",
        "orders/orders_apr_2025.xlsx",
        "products/products.csv",
    ]
    assert files_under(lake_dir, "rejected") == []
    assert {r.checks.get("order_id_references_orders") for r in reports[2:]} == {True}
    items = reports[2].metadata["order_items"]
    assert (items["rows_inserted"], items["rows_updated"]) == (40803, 0)

    # The same files again: every upload re-validated, no row and no count changes.
    for path in (lake_dir / "archived").rglob("*.*"):
        land(lake_dir, path.parent.name, path)
    again = ingest(instance, defs)
    assert_all_loaded(again)
    assert [(r.metadata[r.dataset]["rows_inserted"], r.metadata[r.dataset]["rows_updated"])
            for r in again] == [(0, 0)] * 3  # fmt: skip
    assert query(lake, COUNTS) == [(1000, 7500, 40803)]
    assert query(lake, "SELECT count(DISTINCT order_id), sum(total_amount) FROM orders") == query(
        lake, "SELECT count(*), sum(total_amount) FROM orders"
    )
    assert files_under(lake_dir, "raw") == []


def test_shuffled_sheets_give_the_same_table(lake_dir, lake, defs, instance):
    land_lab5(lake_dir, items="lab5-variants/order_items.shuffled-sheets.xlsx")
    assert_all_loaded(ingest(instance, defs))
    assert query(lake, COUNTS) == [(1000, 7500, 40803)]
    # the same rows as the ordered workbook: order 17000's lines are on the 15th
    assert query(lake, "SELECT DISTINCT date FROM order_items WHERE order_id = 17000") == [
        (date(2025, 4, 15),)
    ]


def test_thirty_daily_csvs_give_the_same_tables(lake_dir, lake, defs, instance):
    land(lake_dir, "products", shared_file("lab5/products.csv"))
    per_day = shared_file("lab5-variants/per-day")
    for path in sorted(per_day.glob("orders/*.csv")):
        land(lake_dir, "orders", path)
    for path in sorted(per_day.glob("order_items/*.csv")):
        land(lake_dir, "order-items", path)
    reports = ingest(instance, defs)
    assert len(reports) == 31
    assert_all_loaded(reports)
    assert query(lake, COUNTS) == [(1000, 7500, 40803)]


def test_bad_files_are_rejected_whole_with_a_reason_and_the_rest_still_load(
    lake_dir, lake, defs, instance
):
    good = xlsx_bytes({"2025-04-01": [ORDERS_HEADER, order(1), order(2)]})
    land(lake_dir, "orders", good, "good.xlsx")
    land(lake_dir, "orders", csv_bytes([["order_id", "amount"], [1, 2]]), "wrong_header.csv")
    land(lake_dir, "orders", good[: len(good) // 3], "corrupt.xlsx")
    land(lake_dir, "orders", b"", "empty.csv")
    land(lake_dir, "orders", b"%PDF-1.4", "scan.pdf")

    reports = {r.file_key: r for r in ingest(instance, defs)}
    assert reports["orders/good.xlsx"].success
    assert {k for k, r in reports.items() if not r.success} == {
        "orders/wrong_header.csv",
        "orders/corrupt.xlsx",
        "orders/empty.csv",
        "orders/scan.pdf",
    }
    assert "missing columns" in reports["orders/wrong_header.csv"].error
    assert query(lake, "SELECT count(*) FROM orders") == [(2,)]
    assert files_under(lake_dir, "raw") == []
    assert files_under(lake_dir, "rejected/invalid_schema") == [
        "orders/wrong_header.csv",
        "orders/wrong_header.csv.reason.json",
    ]
    assert files_under(lake_dir, "rejected/unreadable") == [
        "orders/corrupt.xlsx",
        "orders/corrupt.xlsx.reason.json",
        "orders/empty.csv",
        "orders/empty.csv.reason.json",
        "orders/scan.pdf",
        "orders/scan.pdf.reason.json",
    ]
    reason = json.loads((lake_dir / "rejected/unreadable/orders/empty.csv.reason.json").read_text())
    assert (reason["file"], reason["rejection"], reason["reason"]) == (
        "orders/empty.csv",
        "unreadable",
        "the file is empty",
    )


def test_bad_rows_go_to_rejected_records_and_are_queryable(lake_dir, lake, defs, instance):
    rows = [ORDERS_HEADER, order(1), order(2, amount=-1), order(3, amount="x"), order(1)]
    land(lake_dir, "orders", csv_bytes(rows), "mixed.csv")
    (report,) = ingest(instance, defs)
    assert report.success
    assert report.metadata["orders_validated"]["rows_rejected"] == 3
    assert files_under(lake_dir, "rejected/records") == ["orders/mixed.csv.parquet"]
    assert query(lake, "SELECT order_id FROM orders") == [(1,)]
    assert query(lake, "SELECT _source_row, _reason FROM rejected_orders ORDER BY _source_row") == [
        (2, "duplicate order_id 1: superseded by row 5"),
        (3, "rule total_amount_positive"),
        (4, "total_amount: not a valid decimal(12,2): x"),
    ]


def test_a_crash_after_the_commit_converges_on_a_rerun(lake_dir, lake, defs, instance):
    land(lake_dir, "orders", csv_bytes([ORDERS_HEADER, order(1), order(2)]), "o.csv")
    instance.add_dynamic_partitions("orders_files", ["orders/o.csv"])
    job = defs.resolve_job_def("orders_ingest")
    # The run dies after the Delta commit, before the archive step.
    partial = job.execute_in_process(
        partition_key="orders/o.csv",
        instance=instance,
        asset_selection=[dg.AssetKey("orders_validated"), dg.AssetKey("orders")],
    )
    assert partial.success
    assert files_under(lake_dir, "raw") == ["orders/o.csv"]  # nothing left raw/ early
    (report,) = ingest(instance, defs)
    assert report.success
    assert report.metadata["orders"]["already_committed"] is True
    assert query(lake, "SELECT count(*) FROM orders") == [(2,)]
    assert files_under(lake_dir, "raw") == []
    assert files_under(lake_dir, "archived") == ["orders/o.csv"]


def test_an_archived_file_can_be_reprocessed_by_partition(lake_dir, lake, defs, instance):
    land(lake_dir, "orders", csv_bytes([ORDERS_HEADER, order(1), order(2)]), "o.csv")
    ingest(instance, defs)
    # a late fix to the table is overwritten when the file is re-processed from the archive
    shutil.rmtree(lake_dir / "processed")
    result = defs.resolve_job_def("orders_ingest").execute_in_process(
        partition_key="orders/o.csv", instance=instance
    )
    assert result.success
    materialization = result.asset_materializations_for_node("orders")[0]
    assert materialization.metadata["rows_inserted"].value == 2
    assert files_under(lake_dir, "archived") == ["orders/o.csv"]


def test_order_items_before_their_orders_load_and_warn(lake_dir, lake, defs, instance):
    items = [
        ["id", "order_id", "user_id", "days_since_prior_order", "product_id",
         "add_to_cart_order", "reordered", "order_timestamp", "date"],
        [1, 10, 7, "", 3, 1, 0, "2025-04-01T10:00:00", "2025-04-01"],
    ]  # fmt: skip
    land(lake_dir, "order-items", csv_bytes(items), "i.csv")
    (report,) = ingest(instance, defs)
    assert report.success
    assert report.checks == {
        "row_count_reconciles": True,
        "id_unique_and_not_null": True,
        "order_id_references_orders": False,
        "product_id_references_products": False,
    }
    assert "FAILED CHECKS" in report.summary()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_other_formats_land_in_the_same_table(lake_dir, lake, defs, instance, fmt):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [dict(zip(ORDERS_HEADER, order(i), strict=True)) for i in (1, 2)]
    if fmt == "jsonl":
        data = "".join(json.dumps(r) + "\n" for r in records).encode()
    else:
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(records), sink)
        data = sink.getvalue()
    land(lake_dir, "orders", data, f"o.{fmt}")
    (report,) = ingest(instance, defs)
    assert report.success, report.error
    assert query(lake, "SELECT count(*) FROM orders") == [(2,)]
