"""Batches of files per run: the sensor's batches, each file's own outcome in a batch run, one
bad file that holds back no other, and a batch run again that changes nothing."""

import json

import dagster as dg
from deltalake import DeltaTable

from ecom_lakehouse.core import layout
from ecom_lakehouse.core.storage import Lake
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.names import FILES_TAG, RAW_SENSOR
from ecom_lakehouse.runner import ingest
from ecom_lakehouse_tests.conftest import (
    archived_files,
    commits_per_upload,
    files_under,
    land,
    query,
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
    # one file: its own partition; several: a batch partition, the files in the run config
    assert requests[0].partition_key == "products/p.csv"
    assert requests[3].partition_key == "orders/o6.csv"
    batch = requests[1]
    assert layout.is_batch_partition_key(batch.partition_key)
    assert batch.run_config["ops"]["orders_validated"]["config"]["files"] == [
        "orders/o0.csv",
        "orders/o1.csv",
        "orders/o2.csv",
    ]
    added = {
        r.partitions_def_name: list(r.partition_keys) for r in result.dynamic_partitions_requests
    }
    assert added["orders_files"] == [r.partition_key for r in requests[1:]]


def test_a_batch_file_name_can_never_be_a_landed_file():
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


def test_a_batch_partition_without_its_files_says_what_to_do(lake_dir, defs, instance):
    key = layout.batch_partition_key("orders", "20260101T000000Z", "0123456789abcdef")
    instance.add_dynamic_partitions("orders_files", [key])
    result = defs.resolve_job_def("orders_ingest").execute_in_process(
        instance=instance, partition_key=key, raise_on_error=False
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "re-execute that run" in failure.step_failure_data.user_failure_data.description
