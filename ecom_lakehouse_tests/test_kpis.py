"""TheLook datasets and the KPI tables: the real export loads completely; KPI values equal an
independent computation (pandas over the CSV files, not the project's SQL); a later file
recomputes only the days it touched; DynamoDB holds exactly the KPI rows; automation refreshes
them when their inputs change."""

import json
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from ecom_lakehouse.contracts import CONTRACTS, KPIS
from ecom_lakehouse.core.kpis.refresh import refresh
from ecom_lakehouse.resources.kpi_sinks import DynamoDbKpiSink
from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse_tests.conftest import (
    REGION,
    Stack,
    files_under,
    land,
    query,
    s3_stack,
    shared_file,
    today,
)
from ecom_lakehouse_tests.files import csv_bytes

THELOOK = {
    "thelook-products": "thelook/subset_products.csv",
    "thelook-orders": "thelook/subset_orders.csv",
    "thelook-order-items": "thelook/subset_order_items.csv",
}
CENT = Decimal("0.01")


def land_thelook(stack: Stack) -> None:
    for folder, relative in THELOOK.items():
        land(stack.lake, folder, shared_file(relative))


def money(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(CENT)


def expected_kpis(
    orders: pd.DataFrame, items: pd.DataFrame, products: pd.DataFrame
) -> tuple[dict, dict]:
    """order_kpis_daily and category_kpis, computed with pandas from the CSV rows."""
    orders = orders.drop_duplicates("order_id", keep="last").copy()
    items = items.drop_duplicates("id", keep="last").copy()
    products = products.drop_duplicates("id", keep="last")
    orders["order_date"] = pd.to_datetime(orders.created_at.str.removesuffix(" UTC")).dt.date
    items["price"] = items.sale_price.map(money)
    items["status_"] = items.status.str.lower()
    items["sold"] = ~items.status_.isin(["cancelled", "returned"])
    joined = items.merge(orders[["order_id", "order_date"]], on="order_id")
    joined = joined.merge(
        products[["id", "category"]].rename(columns={"id": "product_id"}),
        on="product_id",
        how="left",
    )
    joined["category"] = joined.category.fillna("(unknown)")
    daily = {}
    for day, group in orders.groupby("order_date"):
        sold = joined[(joined.order_date == day) & joined.sold]
        daily[day] = {
            "total_orders": len(group),
            "total_revenue": sum(sold.price, Decimal("0.00")),
            "total_items_sold": len(sold),
            "return_rate": (group.status.str.lower() == "returned").sum() / len(group),
            "unique_customers": group.user_id.nunique(),
        }
    categories = {}
    for (category, day), group in joined.groupby(["category", "order_date"]):
        sold = group[group.sold]
        revenue = sum(sold.price, Decimal("0.00"))
        orders_sold = sold.order_id.nunique()
        average = revenue / orders_sold if orders_sold else Decimal(0)
        categories[(category, day)] = {
            "daily_revenue": revenue,
            "avg_order_value": average.quantize(CENT, ROUND_HALF_UP),
            "avg_return_rate": (group.status_ == "returned").sum() / len(group),
        }
    return daily, categories


def read_csvs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return (
        pd.read_csv(shared_file(THELOOK["thelook-orders"])),
        pd.read_csv(shared_file(THELOOK["thelook-order-items"])),
        pd.read_csv(shared_file(THELOOK["thelook-products"])),
    )


def kpi_rows(stack: Stack, name: str) -> dict:
    kpi = KPIS[name]
    rows = query(stack, f"SELECT {', '.join(kpi.column_names)} FROM {name}")
    width = len(kpi.key)
    found = {}
    for row in rows:
        key = row[0] if width == 1 else tuple(row[:width])
        found[key] = dict(zip(kpi.value_columns, row[width:], strict=True))
    return found


def assert_kpis_equal(found: dict, expected: dict) -> None:
    assert found.keys() == expected.keys()
    for key, values in expected.items():
        for column, value in values.items():
            if isinstance(value, float):
                assert found[key][column] == pytest.approx(value), (key, column)
            else:
                assert found[key][column] == value, (key, column)


def test_the_thelook_export_loads_completely_and_its_kpis_match_pandas(stack, instance):
    land_thelook(stack)
    reports = ingest(instance, stack.defs)
    assert [r.error for r in reports if not r.success] == []
    assert [r.failed_checks for r in reports] == [[], [], []]  # keys unique, every FK resolves
    for report in reports:
        validated = report.metadata[f"{report.dataset}_validated"]
        # every row loaded or de-duplicated, with its reason; nothing else rejected
        assert set(json.loads(validated["rejected_by_reason"])) <= {"exact duplicate"}, validated
        loaded = report.metadata[report.dataset]["rows_inserted"]
        assert validated["rows_read"] == loaded + validated["rows_rejected"]
    assert files_under(stack.lake, "raw") == []
    assert query(stack, "SELECT count(*), count(DISTINCT order_id) FROM thelook_orders") == [
        (495, 495)
    ]
    daily, categories = expected_kpis(*read_csvs())
    assert_kpis_equal(kpi_rows(stack, "order_kpis_daily"), daily)
    assert_kpis_equal(kpi_rows(stack, "category_kpis"), categories)
    # an item belongs to its order's day, not its own (often days later)
    assert query(stack, "SELECT sum(total_items_sold) FROM order_kpis_daily") == [
        (sum(d["total_items_sold"] for d in daily.values()),)
    ]


def later_items(day_of: str, count: int = 3) -> tuple[bytes, str]:
    """A later order-items file: new items of an existing order (a late item for an old day)."""
    orders = pd.read_csv(shared_file(THELOOK["thelook-orders"])).drop_duplicates("order_id")
    order = orders[orders.created_at.str.startswith(day_of)].iloc[0]
    header = list(CONTRACTS["thelook_order_items"].source_column_names)
    products = pd.read_csv(shared_file(THELOOK["thelook-products"]))
    rows = [
        [900000 + n, order.order_id, order.user_id, products.id.iloc[n], 1, "Complete",
         "2025-12-01 10:00:00.000000 UTC", "", "", "", 10.0 + n]
        for n in range(count)
    ]  # fmt: skip
    return csv_bytes([header, *rows]), str(order.created_at)[:10]


def test_a_later_file_recomputes_only_the_days_it_touched(tmp_path, instance):
    from ecom_lakehouse_tests.conftest import local_stack

    stack = local_stack(tmp_path / "lake")
    land_thelook(stack)
    ingest(instance, stack.defs)
    before = {
        row[0]: row[1]
        for row in query(stack, "SELECT order_date, _computed_at FROM order_kpis_daily")
    }
    data, day = later_items("2024-08")
    land(stack.lake, "thelook-order-items", data, "late_items.csv")
    kpis: list = []
    ingest(instance, stack.defs, kpi_reports=kpis)
    daily = next(k for k in kpis if k.name == "order_kpis_daily")
    assert (daily.metadata["days_recomputed"], daily.metadata["rows_updated"]) == (1, 1)
    after = {
        row[0]: row[1]
        for row in query(stack, "SELECT order_date, _computed_at FROM order_kpis_daily")
    }
    changed = {d for d in after if after[d] != before[d]}
    assert changed == {date.fromisoformat(day)}
    # and the tables equal a full recompute (and pandas over the same rows)
    orders, items, products = read_csvs()
    extra = pd.read_csv(pd.io.common.BytesIO(data))
    daily_expected, categories_expected = expected_kpis(orders, pd.concat([items, extra]), products)
    assert_kpis_equal(kpi_rows(stack, "order_kpis_daily"), daily_expected)
    assert_kpis_equal(kpi_rows(stack, "category_kpis"), categories_expected)
    full = refresh(stack.lake, KPIS["order_kpis_daily"], CONTRACTS, full=True)
    assert (full.inserted, full.updated, full.deleted) == (0, 0, 0)


def test_the_seed_kpis_match_pandas_on_the_lab5_files(tmp_path, instance):
    from ecom_lakehouse_tests.conftest import local_stack

    stack = local_stack(tmp_path / "lake")
    land(stack.lake, "products", shared_file("lab5/products.csv"))
    land(stack.lake, "orders", shared_file("lab5/orders_apr_2025.xlsx"))
    land(stack.lake, "order-items", shared_file("lab5/order_items_apr_2025.xlsx"))
    ingest(instance, stack.defs)
    orders = pd.concat(pd.read_excel(shared_file("lab5/orders_apr_2025.xlsx"), sheet_name=None))
    items = pd.concat(pd.read_excel(shared_file("lab5/order_items_apr_2025.xlsx"), sheet_name=None))
    products = pd.read_csv(shared_file("lab5/products.csv"))
    orders["day"] = pd.to_datetime(orders.date).dt.date
    joined = items.merge(orders[["order_id", "day"]], on="order_id").merge(
        products[["product_id", "department"]], on="product_id", how="left"
    )
    sales = {
        day: {
            "orders": len(g),
            "revenue": sum((Decimal(repr(v)).quantize(CENT) for v in g.total_amount), CENT * 0),
            "items": int((joined.day == day).sum()),
            "unique_customers": g.user_id.nunique(),
        }
        for day, g in orders.groupby("day")
    }
    assert_kpis_equal(kpi_rows(stack, "sales_daily"), sales)
    departments = {
        (dept, day): {
            "items_sold": len(g),
            "orders": g.order_id.nunique(),
            "reorder_rate": g.reordered.mean(),
        }
        for (dept, day), g in joined.groupby(["department", "day"])
    }
    assert_kpis_equal(kpi_rows(stack, "department_sales_daily"), departments)


# -- DynamoDB ---------------------------------------------------------------------------------


@dataclass
class Throttled:
    """The moto DynamoDB client, except that the first batches leave half their items
    unprocessed, as DynamoDB does when it throttles a table."""

    client: Any
    throttle: int
    calls: int = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def batch_write_item(self, RequestItems: dict) -> dict:
        self.calls += 1
        if self.throttle <= 0:
            return self.client.batch_write_item(RequestItems=RequestItems)
        self.throttle -= 1
        ((table, requests),) = RequestItems.items()
        half = len(requests) // 2
        self.client.batch_write_item(RequestItems={table: requests[:half]})
        return {"UnprocessedItems": {table: requests[half:]} if requests[half:] else {}}


def dynamodb_stack(moto_endpoint: str) -> tuple[Stack, dict[str, str]]:
    stack = s3_stack(moto_endpoint)
    dynamodb = stack.client("dynamodb")
    names = {"order_kpis_daily": f"{stack.env['LAKEHOUSE_GLUE_DATABASE']}-orders",
             "category_kpis": f"{stack.env['LAKEHOUSE_GLUE_DATABASE']}-categories"}  # fmt: skip
    for kpi, table in names.items():
        keys = KPIS[kpi].key
        dynamodb.create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": k, "KeyType": t}
                for k, t in zip(keys, ("HASH", "RANGE")[: len(keys)], strict=True)
            ],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    stack.env |= {
        "LAKEHOUSE_KPI_ORDER_TABLE": names["order_kpis_daily"],
        "LAKEHOUSE_KPI_CATEGORY_TABLE": names["category_kpis"],
    }
    return stack, names


def stored_items(stack: Stack, table: str) -> list[dict]:
    from boto3.dynamodb.types import TypeDeserializer

    plain = TypeDeserializer().deserialize
    pages = stack.client("dynamodb").get_paginator("scan").paginate(TableName=table)
    items = [{k: plain(v) for k, v in item.items()} for page in pages for item in page["Items"]]
    return sorted(items, key=repr)


def dynamodb_value(value: object) -> object:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value) if isinstance(value, int) else value


def as_items(stack: Stack, kpi: str) -> list[dict]:
    """The KPI table's rows as DynamoDB items read back (dates as text, numbers as Decimal)."""
    columns = KPIS[kpi].column_names
    rows = query(stack, f"SELECT {', '.join(columns)} FROM {kpi}")
    items = [{c: dynamodb_value(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    return sorted(items, key=repr)


def test_dynamodb_holds_exactly_the_kpi_rows_and_a_repush_writes_nothing(moto_endpoint, instance):
    stack, tables = dynamodb_stack(moto_endpoint)
    land_thelook(stack)
    ingest(instance, stack.defs)
    for kpi, table in tables.items():
        assert stored_items(stack, table) == as_items(stack, kpi)
    # a second load that changes one day: both tables follow, and only that day was pushed
    data, _ = later_items("2025-03")
    land(stack.lake, "thelook-order-items", data, "late.csv")
    kpis: list = []
    ingest(instance, stack.defs, kpi_reports=kpis)
    pushed = {k.name: k.metadata.get("dynamodb_items_written") for k in kpis}
    assert pushed == {"order_kpis_daily": 1, "category_kpis": pushed["category_kpis"]}
    assert 1 <= pushed["category_kpis"] <= 3
    for kpi, table in tables.items():
        assert stored_items(stack, table) == as_items(stack, kpi)
    # a re-push with nothing new writes nothing
    sink = stack.defs.resources["kpi_sink"]
    assert isinstance(sink, DynamoDbKpiSink)
    calls = []
    outcome = refresh(
        stack.lake, KPIS["order_kpis_daily"], CONTRACTS, push=lambda *a: calls.append(a) or {}
    )
    assert (outcome.dates, calls) == ([], [])
    # the item shapes: keys as text, numbers as numbers
    item = stored_items(stack, tables["category_kpis"])[0]
    assert set(item) == {
        "category",
        "order_date",
        "daily_revenue",
        "avg_order_value",
        "avg_return_rate",
    }
    assert isinstance(item["daily_revenue"], Decimal) and len(item["order_date"]) == 10


def test_unprocessed_items_are_retried_until_written(moto_endpoint):
    stack, tables = dynamodb_stack(moto_endpoint)
    sink = DynamoDbKpiSink(tables=tables, endpoint_url=moto_endpoint, region=REGION)
    throttled = Throttled(sink.client(), throttle=3)

    class ThrottledSink(DynamoDbKpiSink):
        def client(self) -> Any:
            return throttled

    kpi = KPIS["order_kpis_daily"]
    rows = pd.DataFrame(
        {"order_date": [date(2025, 1, d) for d in range(1, 31)], "total_orders": range(30),
         "total_revenue": [Decimal("1.50")] * 30, "total_items_sold": range(30),
         "return_rate": [0.25] * 30, "unique_customers": range(30)}
    )  # fmt: skip
    import pyarrow as pa

    upserts = pa.Table.from_pandas(rows, preserve_index=False)
    result = ThrottledSink(tables=tables, endpoint_url=moto_endpoint, region=REGION).push(
        kpi, upserts, upserts.select(["order_date"]).slice(0, 0)
    )
    assert result["dynamodb_retries"] == 3 and throttled.calls == 5  # 2 batches + 3 retries
    assert len(stored_items(stack, tables["order_kpis_daily"])) == 30


# -- automation -------------------------------------------------------------------------------


def test_a_load_makes_automation_request_the_kpis_it_feeds(tmp_path):
    from ecom_lakehouse.definitions import build_defs

    defs = build_defs({"LAKEHOUSE_URI": str(tmp_path)})
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        instance.report_runless_asset_event(
            dg.AssetMaterialization("thelook_order_items", partition=today())
        )
        second = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=first.cursor
        )
    requested = {
        key
        for key in (
            "order_kpis_daily",
            "category_kpis",
            "thelook_order_items_catalog",
            "sales_daily",
        )
        if second.get_requested_partitions(dg.AssetKey(key))
    }
    assert first.total_requested == 0
    assert requested == {"order_kpis_daily", "category_kpis", "thelook_order_items_catalog"}


def test_every_kpi_column_shows_the_dataset_columns_it_comes_from():
    """The UI's column lineage: each KPI column names dataset columns that exist, of datasets
    the KPI is computed from."""
    import dagster as dg

    from ecom_lakehouse.defs.kpis import kpi_asset

    for kpi in KPIS.values():
        lineage = (
            kpi_asset(kpi, CONTRACTS)
            .specs_by_key[dg.AssetKey(kpi.name)]
            .metadata["dagster/column_lineage"]
        )
        assert set(lineage.deps_by_column) == set(kpi.column_names), kpi.name
        inputs = {source.dataset for source in kpi.inputs}
        for column, deps in lineage.deps_by_column.items():
            for dep in deps:
                dataset = dep.asset_key.to_user_string()
                assert dataset in inputs, (kpi.name, column, dataset)
                assert dep.column_name in CONTRACTS[dataset].column_names, (column, dep)
