"""Freshness: each dataset table's check, with the interval its contract declares, passes after a
load and fails for a table not loaded within its interval (or never)."""

import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from ecom_lakehouse.contracts import CONTRACTS, DatasetContract
from ecom_lakehouse.defs.monitoring import freshness_checks
from ecom_lakehouse.generators.transactions import generate
from ecom_lakehouse.names import FRESHNESS_SENSOR, names_of
from ecom_lakehouse.runner.checks import check_outcome
from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse.runner.status import (
    FAILED,
    NOT_RUN,
    PASSED,
    RUNNING,
    TableStatus,
    freshness_now,
)
from ecom_lakehouse_tests.conftest import land, local_stack, today
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order
from ecom_lakehouse_tests.test_promises import CLI, cli_env


def evaluate(instance: dg.DagsterInstance, contracts: list[DatasetContract]) -> dict[str, bool]:
    """Each contract's freshness check, run once against the instance's records."""
    checks = freshness_checks(contracts)
    job = dg.define_asset_job("freshness", selection=dg.AssetSelection.all_asset_checks())
    defs = dg.Definitions(
        assets=[dg.AssetSpec(names_of(c).table) for c in contracts],
        asset_checks=checks,
        jobs=[job],
    )
    result = defs.resolve_job_def("freshness").execute_in_process(instance=instance)
    return {e.asset_key.to_user_string(): e.passed for e in result.get_asset_check_evaluations()}


def test_a_loaded_table_is_fresh_and_one_never_loaded_is_not(lake_dir, defs, instance):
    generate(Path(lake_dir) / "raw", orders=3, days=1, seed=2)
    assert all(r.success for r in ingest(instance, defs))

    assert evaluate(instance, [CONTRACTS["transactions"], CONTRACTS["orders"]]) == {
        "transactions": True,
        "orders": False,
    }
    # what the UI plots per load: its duration and the oldest file's wait from landing to commit
    event = instance.get_latest_materialization_event(dg.AssetKey("transactions"))
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    files = metadata["files"].value.records  # type: ignore[attr-defined]
    lags = [record.data["lag_ms"] for record in files]
    assert len(lags) == 3 and all(lag >= 0 for lag in lags)
    assert metadata["lag_seconds_max"].value == max(lags) / 1000
    assert metadata["load_seconds"].value > 0
    repository = defs.get_repository_def()
    sensor = repository.get_sensor_def(FRESHNESS_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    checked = {key.asset_key.to_user_string() for key in repository.asset_checks_defs_by_key}
    assert {c.name for c in CONTRACTS.values() if c.freshness} <= checked


def test_a_table_not_loaded_within_its_interval_fails_its_check(instance):
    every_second = replace(CONTRACTS["transactions"], freshness=timedelta(seconds=1))
    instance.report_runless_asset_event(dg.AssetMaterialization("transactions"))
    assert evaluate(instance, [every_second]) == {"transactions": True}
    time.sleep(1.5)
    assert evaluate(instance, [every_second]) == {"transactions": False}
    assert evaluate(instance, [CONTRACTS["transactions"]]) == {"transactions": True}  # 15 min


def test_status_shows_rows_loads_waiting_files_rejects_and_checks(tmp_path):
    stack = local_stack(tmp_path / "lake")
    rows = [ORDERS_HEADER, order(1), order(2), order(3, amount="lots")]
    land(stack.lake, "orders", csv_bytes(rows), "o1.csv")
    land(stack.lake, "orders", csv_bytes([["wrong", "header"], [1, 2]]), "bad.csv")
    env = {**cli_env(stack), "DAGSTER_HOME": str(tmp_path / "home")}
    Path(env["DAGSTER_HOME"]).mkdir()
    subprocess.run([CLI, "ingest"], env=env, capture_output=True, timeout=300, check=False)
    land(stack.lake, "orders", csv_bytes([ORDERS_HEADER, order(4)]), "o2.csv")  # not yet loaded

    done = subprocess.run(
        [CLI, "status"], env=env, capture_output=True, text=True, timeout=300, check=False
    )

    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("orders: "))
    assert "2 rows, last load " in line and " ago)" in line, line
    assert "1 file(s) waiting in raw/ (lag: the oldest landed " in line, line
    assert "rejected in the last day: 1 file(s), 1 row(s)" in line, line
    assert "checks: " in line and "passed" in line, line
    assert "freshness_check" not in line  # evaluated by its sensor, not by a load
    assert "products: no table yet" in done.stdout


def test_status_tells_passed_failed_running_and_not_run_checks_apart(lake_dir, defs, instance):
    outcomes = {"a_unique": PASSED, "b_fk": FAILED, "c_fresh": RUNNING, "d_rows": NOT_RUN}
    line = TableStatus("orders", rows=1, checks=outcomes).summary(datetime.now(UTC))
    assert line.endswith(
        "checks: 1 passed, 1 failed (b_fk), 1 pending (c_fresh), 1 not run (d_rows)"
    )

    # a check planned by a run still going is running; once that run ended without it, not run
    job = defs.resolve_job_def("orders_ingest")
    run = instance.create_run_for_job(job, tags={"dagster/partition": today()})
    assert check_outcome(instance, "PLANNED", run.run_id) == RUNNING
    instance.report_run_failed(run)
    assert check_outcome(instance, "PLANNED", run.run_id) == NOT_RUN
    assert check_outcome(instance, "SUCCEEDED", run.run_id) == PASSED
    assert check_outcome(instance, "FAILED", run.run_id) == FAILED


def test_status_says_freshness_as_it_stands_now():
    now = datetime.now(UTC)
    loaded = TableStatus("orders", rows=1, last_load=now - timedelta(minutes=5))
    assert freshness_now(loaded, timedelta(days=1), now) == PASSED
    assert freshness_now(loaded, timedelta(minutes=1), now) == FAILED
    assert freshness_now(TableStatus("orders"), timedelta(days=1), now) == FAILED
