"""Schema evolution with nothing dropped: a contract that gains an optional column adds it to the
table and the catalog (old rows read NULL), a value under a column the contract does not know
is kept in ``_rescued_data``, and a changed column type is refused with what to do."""

import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from ecom_lakehouse.contracts import CONTRACTS, RESCUED_DATA, SOURCE_FILE, Column
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.pipeline import load_batch, validate_batch
from ecom_lakehouse.core.tables.evolution import SchemaChangeRefused, columns_to_add
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.names import FAILED_RUNS_SENSOR
from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse_tests.conftest import Stack, files_under, land, local_stack, query
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order

ORDERS = CONTRACTS["orders"]
COUPON = Column("coupon", "string", required=False, description="The coupon used, if any.")
WITH_COUPON = replace(ORDERS, columns=(*ORDERS.columns, COUPON))


def delta_table(lake: Lake, name: str) -> DeltaTable:
    return DeltaTable(lake.url(layout.table_path(name)), storage_options=lake.storage_options())


def test_a_contract_that_gains_an_optional_column_adds_it_to_the_table_and_catalog(stack, instance):
    land(stack.lake, "orders", csv_bytes([ORDERS_HEADER, order(1), order(2)]), "before.csv")
    assert all(r.success for r in ingest(instance, stack.defs))
    protocol = delta_table(stack.lake, "orders").protocol()

    defs = build_defs(stack.env, {**CONTRACTS, "orders": WITH_COUPON})  # the contract, changed
    header = [*ORDERS_HEADER, "coupon"]
    rows = [header, [*order(2), "SPRING"], [*order(3), "WINTER"]]
    land(stack.lake, "orders", csv_bytes(rows), "after.csv")
    # a producer still on the old layout: the optional column is absent from its header
    land(stack.lake, "orders", csv_bytes([ORDERS_HEADER, order(4)]), "old_layout.csv")
    reports = ingest(instance, defs)
    assert [r.success for r in reports] == [True, True], reports

    found = query(stack, "SELECT order_id, coupon FROM orders ORDER BY order_id")
    assert found == [(1, None), (2, "SPRING"), (3, "WINTER"), (4, None)]
    table = delta_table(stack.lake, "orders")
    (field,) = [f for f in json.loads(table.schema().to_json())["fields"] if f["name"] == "coupon"]
    assert (field["type"], field["nullable"]) == ("string", True)
    # adding a column is metadata only: every engine that read the table still can
    assert table.protocol() == protocol
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 4)
    if stack.kind == "s3":
        glue = stack.client("glue").get_table(
            DatabaseName=stack.env["LAKEHOUSE_GLUE_DATABASE"], Name="orders"
        )["Table"]
        columns = [(c["Name"], c["Type"]) for c in glue["StorageDescriptor"]["Columns"]]
        assert ("coupon", "string") in columns
        assert columns.index(("coupon", "string")) < columns.index((RESCUED_DATA, "string"))


def test_values_under_columns_the_contract_does_not_know_are_kept_in_rescued_data(
    tmp_path, instance
):
    stack = local_stack(tmp_path / "lake")
    rows = [
        [*ORDERS_HEADER, "coupon", "Channel", ""],
        [*order(1), "SPRING", "web", ""],
        [*order(2), "", "", ""],  # nothing unknown on this row
        [*order(3, amount="oops"), "AUTUMN", "app", "note"],  # rejected: keeps them too
    ]
    land(stack.lake, "orders", csv_bytes(rows), "extra.csv")
    (report,) = ingest(instance, stack.defs)
    assert report.success

    found = query(
        stack,
        f"SELECT order_id, {RESCUED_DATA}, json_extract_string({RESCUED_DATA}, '$.coupon') "
        "FROM orders ORDER BY order_id",
    )
    assert found == [(1, '{"coupon": "SPRING", "Channel": "web"}', "SPRING"), (2, None, None)]
    rejected = query(stack, f"SELECT order_id, {RESCUED_DATA} FROM rejected_orders")
    assert rejected == [("3", '{"coupon": "AUTUMN", "Channel": "app", "column 9": "note"}')]


def test_a_table_made_before_the_audit_columns_and_rescued_data_gains_them(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    # a row written before the table had them (as the 5M-row benchmark table is written)
    land(lake, "orders", csv_bytes([ORDERS_HEADER, order(7)]), "old.csv")
    validate_batch(lake, ORDERS, ["orders/old.csv"], "b0")
    old = pq.read_table(io.BytesIO(lake.read(layout.validated_batch_key("orders", "b0"))[0]))
    old_columns = [f.name for f in ORDERS.table_schema if not f.name.startswith("_")]
    write_deltalake(
        lake.url(layout.table_path("orders")), old.select(old_columns), partition_by=["date"]
    )
    land(lake, "orders", csv_bytes([[*ORDERS_HEADER, "coupon"], [*order(1), "X"]]), "a.csv")
    validate_batch(lake, ORDERS, ["orders/a.csv"], "b1")
    load_batch(lake, ORDERS, "b1")
    rows = delta_table(lake, "orders").to_pyarrow_table().sort_by("order_id")
    assert rows.select(["order_id", RESCUED_DATA, SOURCE_FILE]).to_pylist() == [
        {"order_id": 1, RESCUED_DATA: json.dumps({"coupon": "X"}), SOURCE_FILE: "orders/a.csv"},
        {"order_id": 7, RESCUED_DATA: None, SOURCE_FILE: None},
    ]


def test_a_changed_column_type_is_refused_with_what_to_do(stack, instance):
    land(stack.lake, "orders", csv_bytes([ORDERS_HEADER, order(1)]), "a.csv")
    assert all(r.success for r in ingest(instance, stack.defs))
    wider = replace(ORDERS.column("total_amount"), type="decimal(18,2)")
    columns = tuple(wider if c.name == wider.name else c for c in ORDERS.columns)
    defs = build_defs(stack.env, {**CONTRACTS, "orders": replace(ORDERS, columns=columns)})
    land(stack.lake, "orders", csv_bytes([ORDERS_HEADER, order(2)]), "b.csv")
    (report,) = ingest(instance, defs)
    assert not report.success
    assert "total_amount is decimal(12,2) in the table but decimal(18,2) in the contract" in (
        report.error
    )
    assert not report.traceback  # the operator's mistake, not the program's
    assert files_under(stack.lake, "raw") == ["orders/b.csv"]  # nothing leaves raw/
    assert query(stack, "SELECT order_id FROM orders") == [(1,)]
    if stack.kind == "s3":  # the failed run counts in CloudWatch, which an alarm watches
        assert failed_runs_counted(stack, instance) == 1


def failed_runs_counted(stack: Stack, instance: dg.DagsterInstance) -> float:
    """What the failed-runs sensor, evaluated for the instance's failed run, adds to the
    ``RunsFailed`` metric in CloudWatch."""
    (run,) = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    (failure,) = [
        e.dagster_event
        for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        if e.dagster_event
    ]
    defs = stack.defs
    context = dg.build_run_status_sensor_context(
        sensor_name=FAILED_RUNS_SENSOR,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
        resources=defs.resources,
    ).for_run_failure()

    def counted() -> float:  # the moto server is shared: what this evaluation adds is counted
        now = datetime.now(UTC)
        points = stack.client("cloudwatch").get_metric_statistics(
            Namespace="EcomLakehouse", MetricName="RunsFailed", Statistics=["Sum"], Period=3600,
            StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5),
        )["Datapoints"]  # fmt: skip
        return sum(p["Sum"] for p in points)

    before = counted()
    defs.resolve_sensor_def(FAILED_RUNS_SENSOR)(context)
    return counted() - before


def test_a_required_column_cannot_be_added_to_a_table_with_rows():
    required = replace(COUPON, required=True)
    present = {c.name: c.glue_type for c in ORDERS.table_columns}
    assert columns_to_add("orders", (*ORDERS.table_columns, required), present, lambda: False) == [
        required
    ]
    with pytest.raises(SchemaChangeRefused, match=r"required=False"):
        columns_to_add("orders", (*ORDERS.table_columns, required), present, lambda: True)
