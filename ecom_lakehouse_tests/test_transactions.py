"""The transaction stream: its contract (derived calendar columns, the total rule), the JSON
forms a file may take, the generator and its schedule, and seed 004's query."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.read.readers import read_parts
from ecom_lakehouse.core.validate.validation import validate
from ecom_lakehouse.generators import transactions as generator
from ecom_lakehouse.names import GENERATOR_JOB, GENERATOR_SCHEDULE
from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse_tests.conftest import archived_files, files_under, land, query

TRANSACTIONS = CONTRACTS["transactions"]
CLI = str(Path(sys.executable).parent / "ecom-lakehouse")
SEED_004 = (
    "SELECT category, count(*), sum(total_amount), round(avg(total_amount), 2) "
    "FROM transactions GROUP BY category ORDER BY 3 DESC"
)


def tx(tid: str, moment: str, quantity: int = 2, price: str = "9.99", total: str | None = None):
    total = total if total is not None else str(Decimal(price) * quantity)
    return {
        "transaction_id": tid, "timestamp": moment, "customer_id": "C00001",
        "product_id": "P01001", "product_name": "Tablet", "category": "Electronics",
        "quantity": quantity, "price": price, "total_amount": total,
    }  # fmt: skip


def validated(records: list[dict]) -> tuple[list[dict], list[dict]]:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    result = validate(
        TRANSACTIONS, read_parts(data, "jsonl", TRANSACTIONS.source_column_names), "t.json"
    )
    return result.valid.to_pylist(), result.rejected.to_pylist()


def test_calendar_columns_come_from_the_utc_timestamp_across_a_day_and_every_weekday():
    monday = datetime(2025, 5, 5, tzinfo=UTC)
    moments = [monday + timedelta(days=d, hours=d) for d in range(7)]
    records = [tx(f"w{d}", m.isoformat()) for d, m in enumerate(moments)]
    # one second apart across midnight, and a local time that is the previous UTC day
    records += [
        tx("late", "2025-05-04T23:59:59Z"),
        tx("midnight", "2025-05-05T00:00:00Z"),
        tx("offset", "2025-05-05T01:30:00+02:00"),
        {**tx("lies", "2025-05-05T10:00:00Z"), "hour": 3, "day_of_week": 6},  # never trusted
    ]
    rows, rejected = validated(records)
    assert rejected == []
    got = {r["transaction_id"]: r for r in rows}
    for d, moment in enumerate(moments):
        row = got[f"w{d}"]
        assert row["day_of_week"] == d == moment.weekday()
        assert (row["year"], row["month"], row["day"], row["hour"]) == (
            moment.year, moment.month, moment.day, moment.hour,
        )  # fmt: skip
        assert row["transaction_date"] == moment.date()
    assert (got["late"]["transaction_date"].isoformat(), got["late"]["day_of_week"]) == (
        "2025-05-04", 6,
    )  # fmt: skip
    assert (got["midnight"]["transaction_date"].isoformat(), got["midnight"]["hour"]) == (
        "2025-05-05", 0,
    )  # fmt: skip
    assert (got["offset"]["day"], got["offset"]["hour"]) == (4, 23)
    assert (got["lies"]["hour"], got["lies"]["day_of_week"]) == (10, 0)


def test_a_wrong_total_is_rejected_with_its_reason():
    rows, rejected = validated([
        tx("ok", "2025-05-05T10:00:00Z", 3, "19.99", "59.97"),
        tx("off_by_a_cent", "2025-05-05T10:00:00Z", 3, "19.99", "59.96"),
        tx("zero_quantity", "2025-05-05T10:00:00Z", 0, "19.99", "0"),
        tx("negative_price", "2025-05-05T10:00:00Z", 1, "-1.00", "-1.00"),
    ])  # fmt: skip
    assert [r["transaction_id"] for r in rows] == ["ok"]
    reasons = {r["transaction_id"]: r["_reason"] for r in rejected}
    assert reasons["off_by_a_cent"] == "rule total_amount_is_quantity_times_price"
    assert "quantity_at_least_one" in reasons["zero_quantity"]
    assert "price_not_negative" in reasons["negative_price"]


def test_generated_and_hand_written_files_load(lake_dir, defs, instance):
    files = generator.generate(lake_dir / "raw", orders=40, days=2, seed=3)
    pretty = json.dumps(tx("one", "2025-05-05T10:00:00Z"), indent=2).encode()
    land(lake_dir, "transactions", pretty, "one.json")
    lines = "".join(json.dumps(tx(f"l{i}", "2025-05-05T11:00:00Z")) + "\n" for i in range(3))
    land(lake_dir, "transactions", lines.encode(), "2025/05/05/11/lines.jsonl")
    array = [tx(f"a{i}", "2025-05-06T12:00:00Z") for i in range(2)]
    land(lake_dir, "transactions", json.dumps(array).encode(), "array.json")
    bad_line = [json.dumps(tx("g1", "2025-05-06T13:00:00Z")), '{"transaction_id": "x", ',
                json.dumps(tx("g2", "2025-05-06T13:00:00Z"))]  # fmt: skip
    land(lake_dir, "transactions", ("\n".join(bad_line) + "\n").encode(), "bad_line.jsonl")
    reports = ingest(instance, defs)
    assert all(r.success for r in reports), [r.summary() for r in reports if not r.success]
    assert len(reports) == 44
    lake = Lake(str(lake_dir))
    expected = files.rows["transactions"] + 1 + 3 + 2 + 2
    assert query(lake, "SELECT count(*), count(DISTINCT transaction_id) FROM transactions") == [
        (expected, expected)
    ]
    (bad,) = [r for r in reports if r.file_key == "transactions/bad_line.jsonl"]
    assert bad.metadata["transactions_validated"]["rows_rejected"] == 1
    assert files_under(lake_dir, "raw") == []
    assert len(archived_files(lake_dir)) == 44
    # partitioned by the UTC date
    assert {k.split("/")[0] for k in files_under(lake_dir, "processed/transactions")} >= {
        "transaction_date=2025-05-05",
        "transaction_date=2025-05-06",
    }


def test_seed_004s_query_runs_through_the_cli(tmp_path):
    lake = tmp_path / "lake"
    generator.generate(lake / "raw", orders=60, days=1, seed=9)
    env = {**os.environ, "LAKEHOUSE_URI": str(lake)}
    env.pop("DAGSTER_HOME", None)
    loaded = subprocess.run([CLI, "ingest"], env=env, capture_output=True, text=True, check=False)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    answer = subprocess.run(
        [CLI, "query", "--format", "csv", SEED_004],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    header, *rows = answer.stdout.strip().splitlines()
    assert header.startswith("category,count_star()")
    assert sum(int(r.split(",")[1]) for r in rows) == 60
    totals = [Decimal(r.split(",")[2]) for r in rows]
    assert totals == sorted(totals, reverse=True)
    assert {r.split(",")[0] for r in rows} <= set(generator.CATEGORIES)


def test_the_schedule_requests_a_run_whose_files_land_and_load(lake_dir, instance):
    from ecom_lakehouse.definitions import build_defs

    env = {
        "LAKEHOUSE_URI": str(lake_dir),
        "LAKEHOUSE_TRANSACTIONS_CRON": "*/10 * * * *",
        "LAKEHOUSE_TRANSACTIONS_FILES_PER_TICK": "3",
        "LAKEHOUSE_TRANSACTIONS_PER_FILE": "2",
    }
    defs = build_defs(env)
    schedule = defs.get_repository_def().get_schedule_def(GENERATOR_SCHEDULE)
    assert schedule.cron_schedule == "*/10 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    tick = datetime(2026, 1, 2, 13, 0, tzinfo=UTC)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
    (request,) = schedule.evaluate_tick(context).run_requests or []
    job = defs.resolve_job_def(GENERATOR_JOB)
    for _ in range(2):  # a tick run twice writes the same files
        assert job.execute_in_process(run_config=request.run_config, instance=instance).success
    written = files_under(lake_dir, "raw")
    assert len(written) == 3
    # the five minutes before 13:00 are in the 12 o'clock folder
    assert all(k.startswith("transactions/2026/01/02/12/") for k in written), written
    reports = ingest(instance, defs)
    assert [r.success for r in reports] == [True] * 3
    assert query(Lake(str(lake_dir)), "SELECT count(*) FROM transactions") == [(6,)]


@pytest.mark.parametrize("value", ["running", "stopped"])
def test_the_demo_starts_the_schedule_and_production_does_not(lake_dir, value):
    from ecom_lakehouse.definitions import build_defs

    defs = build_defs({"LAKEHOUSE_URI": str(lake_dir), "LAKEHOUSE_TRANSACTIONS_GENERATOR": value})
    schedule = defs.get_repository_def().get_schedule_def(GENERATOR_SCHEDULE)
    assert schedule.default_status.value == value.upper()
