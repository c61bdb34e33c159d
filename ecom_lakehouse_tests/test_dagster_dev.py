"""The README's first command in miniature: `dagster dev` with the sensors on picks up the
files in raw/ and materializes the tables, with no manual step."""

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.sql import duckdb_sql
from ecom_lakehouse.generators import thelook
from ecom_lakehouse.generators.ecommerce import generate
from ecom_lakehouse_tests.conftest import archived_files, files_under, land, query
from ecom_lakehouse_tests.dagster_dev import graphql, running_dagster_dev
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order, xlsx_bytes

REPO = Path(__file__).resolve().parents[1]
RUNS_QUERY = "{ runsOrError { ... on Runs { results { jobName status tags { key value } } } } }"


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[tuple[int, Path, float]]:
    with running_dagster_dev(tmp_path) as running:
        yield running


def test_dagster_dev_picks_up_raw_files_and_materializes_the_tables(dagster_dev):
    port, lake_dir, ui_up = dagster_dev
    files = generate(lake_dir / "raw", orders=300, products=50, seed=3)
    lake = Lake(str(lake_dir))
    deadline = ui_up + 60  # the README promises: within a minute of the UI coming up
    while time.monotonic() < deadline:
        runs = graphql(port, RUNS_QUERY)["runsOrError"]["results"]
        ingest_runs = [r for r in runs if r["jobName"].endswith("_ingest")]
        done = len(ingest_runs) == 3 and all(r["status"] == "SUCCESS" for r in ingest_runs)
        if done and not files_under(lake_dir, "raw"):
            try:
                counts = query(
                    lake,
                    "SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM orders),"
                    " (SELECT count(*) FROM order_items)",
                )
            except Exception:  # the catalog is refreshed by automation a moment later
                counts = None
            if counts == [(50, 300, files.rows["order_items"])]:
                break
        time.sleep(1)
    else:
        pytest.fail(f"not loaded within a minute: runs={runs}, raw={files_under(lake_dir, 'raw')}")
    assert [r for r in runs if r["status"] in ("FAILURE", "CANCELED")] == []
    assert_ingest_runs_came_from_the_sensor(ingest_runs)


def assert_ingest_runs_came_from_the_sensor(ingest_runs: list[dict]) -> None:
    assert {
        tag["value"]
        for r in ingest_runs
        for tag in r["tags"]
        if tag["key"] == "dagster/sensor_name"
    } == {"raw_files_sensor"}


def test_a_thelook_file_reaches_the_kpi_table_without_anyone_acting(dagster_dev):
    port, lake_dir, ui_up = dagster_dev
    files = thelook.generate(lake_dir / "raw", orders=200, products=40, days=10, seed=5)
    kpis = Lake(str(lake_dir)).url(layout.table_path("order_kpis_daily"))
    deadline = ui_up + 90
    days = None
    while time.monotonic() < deadline:
        try:
            con = duckdb_sql.connect(Lake(str(lake_dir)))
            days = con.execute(f"SELECT sum(total_orders) FROM delta_scan('{kpis}')").fetchone()
        except Exception:  # not written yet
            days = None
        if days and days[0] == files.rows["thelook_orders"]:
            break
        time.sleep(1)
    else:
        runs = graphql(port, RUNS_QUERY)["runsOrError"]["results"]
        pytest.fail(f"order_kpis_daily not up to date within 90 s: {days}, runs={runs}")
    runs = graphql(port, RUNS_QUERY)["runsOrError"]["results"]
    assert [r for r in runs if r["status"] in ("FAILURE", "CANCELED")] == []
    automated = [r for r in runs if r["jobName"] == "__ASSET_JOB"]
    assert automated, "the KPI table was refreshed by declarative automation"


def test_the_transactions_schedule_runs_and_its_files_are_loaded(tmp_path):
    # every minute instead of every five, so the first tick comes within the test's minute
    env = {
        "LAKEHOUSE_TRANSACTIONS_GENERATOR": "running",
        "LAKEHOUSE_TRANSACTIONS_CRON": "* * * * *",
    }
    with running_dagster_dev(tmp_path, env) as (port, lake_dir, ui_up):
        deadline = ui_up + 150
        rows = None
        while time.monotonic() < deadline:
            try:
                rows = query(Lake(str(lake_dir)), "SELECT count(*) FROM transactions")
            except Exception:  # no file loaded yet
                rows = None
            if rows and rows[0][0] >= 1 and not files_under(lake_dir, "raw"):
                break
            time.sleep(1)
        else:
            runs = graphql(port, RUNS_QUERY)["runsOrError"]["results"]
            pytest.fail(f"no generated transaction loaded within 150 s: {rows}, runs={runs}")
        runs = graphql(port, RUNS_QUERY)["runsOrError"]["results"]
    generated = [r for r in runs if r["jobName"] == "transactions_generator"]
    assert generated and all(r["status"] == "SUCCESS" for r in generated), runs
    tags = {t["key"]: t["value"] for r in generated for t in r["tags"]}
    assert tags.get("dagster/schedule_name") == "transactions_generator_schedule"


def test_the_daemon_and_ingest_on_one_lake_fail_no_run(tmp_path):
    """Bad and good files dropped together; the daemon queues runs for them and
    `ecom-lakehouse ingest` runs beside it: whoever takes a file first, no run fails, and
    every file ends in exactly one place."""
    with running_dagster_dev(tmp_path) as (port, lake_dir, ui_up):
        for folder, content, name in DROPPED:
            land(lake_dir, folder, content, name)
        deadline = ui_up + 60
        while not _ingest_runs(port) and time.monotonic() < deadline:
            time.sleep(0.2)  # until the daemon has queued its runs
        env = {**os.environ, "LAKEHOUSE_URI": str(lake_dir)}
        env.pop("DAGSTER_HOME", None)
        cli = subprocess.run(
            [str(REPO / ".venv/bin/ecom-lakehouse"), "ingest"], env=env, capture_output=True,
            text=True, timeout=300, check=False,
        )  # fmt: skip
        assert "FAILED" not in cli.stdout and "Traceback" not in cli.stderr, cli.stdout
        while time.monotonic() < deadline + 60:
            runs = _ingest_runs(port)
            if runs and all(r["status"] in FINISHED for r in runs):
                break
            time.sleep(1)
        else:
            pytest.fail(f"the daemon's runs did not finish: {runs}")
    assert [r for r in runs if r["status"] != "SUCCESS"] == [], runs
    assert files_under(lake_dir, "raw") == []
    assert archived_files(lake_dir) == ["orders/good.csv", "products/good.csv"]
    rejected = [k for k in files_under(lake_dir, "rejected") if not k.startswith("records/")]
    assert rejected == [
        "invalid_schema/orders/wrong_header.csv",
        "invalid_schema/orders/wrong_header.csv.reason.json",
        "unreadable/orders/truncated.xlsx",
        "unreadable/orders/truncated.xlsx.reason.json",
    ]


FINISHED = ("SUCCESS", "FAILURE", "CANCELED")
DROPPED = (
    ("orders", csv_bytes([ORDERS_HEADER, *(order(i) for i in range(1, 4))]), "good.csv"),
    ("orders", csv_bytes([["id", "when"], [1, "2025-04-01"]]), "wrong_header.csv"),
    ("orders", xlsx_bytes({"2025-04-01": [ORDERS_HEADER, order(9)]})[:200], "truncated.xlsx"),
    ("products", csv_bytes([["product_id", "department_id", "department", "product_name"],
                            [1, 1, "Books", "A book"]]), "good.csv"),
)  # fmt: skip


def _ingest_runs(port: int) -> list[dict]:
    runs = graphql(port, RUNS_QUERY)["runsOrError"]["results"]
    return [r for r in runs if r["jobName"].endswith("_ingest")]
