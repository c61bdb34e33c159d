"""Batches of files per run: the sensor's batches, each file's own outcome in a batch run, one
bad file that holds back no other, and a batch run again that changes nothing."""

import json

import dagster as dg
from deltalake import DeltaTable

from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.names import FILES_TAG, RAW_SENSOR
from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse_tests.conftest import (
    archived_files,
    commits_per_upload,
    files_under,
    ingest_job_run,
    land,
    query,
    today,
)
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order


def orders_file(first: int, count: int = 3) -> bytes:
    return csv_bytes([ORDERS_HEADER, *(order(i) for i in range(first, first + count))])


def test_the_sensor_takes_up_to_max_files_per_run_of_one_dataset(lake_dir, instance):
    defs = build_defs({"LAKEHOUSE_URI": str(lake_dir), "LAKEHOUSE_MAX_FILES_PER_RUN": "3"})
    for n in range(7):
        land(lake_dir, "orders", orders_file(n * 10), f"o{n}.csv")
    land(lake_dir, "products", b"product_id,department_id,department,product_name\n", "p.csv")
    sensor = defs.get_repository_def().get_sensor_def(RAW_SENSOR)
    result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
    requests = result.run_requests
    assert [(r.job_name, r.tags[FILES_TAG]) for r in requests] == [
        ("products_ingest", "1"),
        ("orders_ingest", "3"),
        ("orders_ingest", "3"),
        ("orders_ingest", "1"),
    ]
    # every run on the day its files landed, its files (and their uploads) in its config
    assert {r.partition_key for r in requests} == {today()}
    batch = requests[1]
    config = batch.run_config["ops"]["orders_validated"]["config"]
    assert config["files"] == ["orders/o0.csv", "orders/o1.csv", "orders/o2.csv"]
    assert set(config["etags"]) == set(config["files"])
    assert len({r.run_key for r in requests}) == 4


def test_hidden_and_temporary_files_are_not_landed_files():
    assert not layout.is_landing_file("raw/orders/_batch/20260101T000000Z-0123456789abcdef")
    assert not layout.is_landing_file("raw/orders/_temporary/0/part-0000.csv")
    assert layout.is_landing_file("raw/orders/2025/04/01/o.csv")


def orders_ingest_job() -> dg.JobDefinition:
    """The orders job, for a re-execution (which rebuilds the job from this function)."""
    return build_defs().resolve_job_def("orders_ingest")


def test_one_corrupt_file_in_a_batch_holds_back_no_other(lake_dir, defs, instance, monkeypatch):
    for n in range(4):
        land(lake_dir, "orders", orders_file(n * 10), f"o{n}.csv")
    land(lake_dir, "orders", b"PAR1\x00\x01 not really parquet", "broken.parquet")
    reports = ingest(instance, defs)
    by_file = {r.file_key: r for r in reports}
    assert len(by_file) == 5
    broken = by_file.pop("orders/broken.parquet")
    assert not broken.success and broken.rejection == "unreadable"
    assert "not a readable parquet file" in broken.error
    assert all(r.success for r in by_file.values())
    # every file's own outcome, from the run's files tables
    assert {r.metadata["orders_validated"]["rows_read"] for r in by_file.values()} == {3}
    versions = {r.metadata["orders"]["table_version"] for r in by_file.values()}
    assert len(versions) == 1  # one commit for the batch...
    assert set(commits_per_upload(Lake(str(lake_dir)), "orders").values()) == {1}  # ...per file
    assert archived_files(lake_dir) == [f"orders/o{n}.csv" for n in range(4)]
    reason = json.loads(
        (lake_dir / "rejected/unreadable/orders/broken.parquet.reason.json").read_text()
    )
    assert "parquet" in reason["reason"]
    assert query(Lake(str(lake_dir)), "SELECT count(*) FROM orders") == [(12,)]
    # a few data files for the batch, not one per landed file
    data_files = [k for k in files_under(lake_dir, "processed/orders") if k.endswith(".parquet")]
    assert len(data_files) <= 3, data_files

    # the batch's run re-executed, as from the UI (it takes the same files, now archived):
    # nothing changes
    (run,) = [r for r in instance.get_runs() if r.job_name == "orders_ingest"]
    before = DeltaTable(str(lake_dir / "processed/orders")).version()
    monkeypatch.setenv("LAKEHOUSE_URI", str(lake_dir))
    again = dg.execute_job(
        dg.reconstructable(orders_ingest_job),
        instance,
        reexecution_options=dg.ReexecutionOptions(parent_run_id=run.run_id),
        tags=run.tags,  # as the UI's re-execution keeps them (the partition's among them)
    )
    assert again.success
    assert DeltaTable(str(lake_dir / "processed/orders")).version() == before
    assert query(Lake(str(lake_dir)), "SELECT count(*) FROM orders") == [(12,)]
    assert set(commits_per_upload(Lake(str(lake_dir)), "orders").values()) == {1}
    assert archived_files(lake_dir) == [f"orders/o{n}.csv" for n in range(4)]
    assert files_under(lake_dir, "raw") == []


def test_a_day_with_nothing_landed_is_a_run_that_loads_nothing(lake_dir, defs, instance):
    result = ingest_job_run(defs, instance, "orders", day="2025-01-02")
    assert result.success
    assert [m.asset_key.to_user_string() for m in result.get_asset_materialization_events()] == [
        "orders_validated"
    ]
