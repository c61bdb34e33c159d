"""A year of operation: partitions by landing day, the load history in SQL, backfills of a day.

Many runs on one day make one partition key; every upload attempt is a row of ``load_history``
(loaded with its counts, rejected with its reason, skipped when delivered again); a backfill of
a day, after the contract was fixed, loads that day's rejected file and leaves the day's loaded
rows as they were; a history that missed a commit is made whole by the next run."""

import dataclasses
import os
from datetime import UTC, datetime, timedelta

import dagster as dg

from ecom_lakehouse.contracts import CONTRACTS, Column, DatasetContract, registered
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.tables import history
from ecom_lakehouse.core.tables.delta import lake_has_table
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.defs.ingest import config as ingest_config
from ecom_lakehouse.defs.reports import reports_for_run
from ecom_lakehouse.names import RAW_SENSOR
from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse.runner.reprocess import reprocess
from ecom_lakehouse_tests.conftest import (
    archived_files,
    files_under,
    ingest_job_run,
    land,
    local_stack,
    materialized,
    query,
    today,
)
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order
from ecom_lakehouse_tests.test_promises import run_cli


def orders_file(first: int, count: int = 2, amount: float = 10) -> bytes:
    rows = (order(i, amount=amount) for i in range(first, first + count))
    return csv_bytes([ORDERS_HEADER, *rows])


def history_rows(lake: Lake, where: str = "true") -> list[tuple]:
    return query(
        lake,
        "SELECT file, status, rows_read, rows_rejected, rows_inserted, rows_updated, reason "
        f"FROM load_history WHERE {where} ORDER BY loaded_at, file",
    )


def test_many_single_file_runs_of_one_day_make_one_partition(lake_dir, instance):
    defs = build_defs({"LAKEHOUSE_URI": str(lake_dir), "LAKEHOUSE_MAX_FILES_PER_RUN": "1"})
    for n in range(5):
        land(lake_dir, "orders", orders_file(n * 10), f"o{n}.csv")
    reports = ingest(instance, defs)
    assert [r.status for r in reports] == ["OK"] * 5
    runs = instance.get_runs(dg.RunsFilter(job_name="orders_ingest"))
    assert len(runs) == 5
    assert {run.tags["dagster/partition"] for run in runs} == {today()}
    for key in ("orders_validated", "orders", "orders_archived"):
        assert instance.get_materialized_partitions(dg.AssetKey(key)) == {today()}
    assert query(Lake(str(lake_dir)), "SELECT count(*) FROM orders") == [(10,)]


def test_the_history_has_a_row_per_upload_attempt(lake_dir, instance):
    lake = Lake(str(lake_dir))
    defs = build_defs({"LAKEHOUSE_URI": str(lake_dir)})
    bad_row = csv_bytes([ORDERS_HEADER, order(1), order(2, amount=-5), order(3)])
    land(lake_dir, "orders", bad_row, "good.csv")
    land(lake_dir, "orders", b"id,when\n1,2025-04-01\n", "wrong.csv")
    sensor = defs.get_repository_def().get_sensor_def(RAW_SENSOR)
    tick = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
    (queued,) = tick.run_requests
    ingest(instance, defs)  # another writer takes the files first...
    late = defs.resolve_job_def(queued.job_name).execute_in_process(  # ...then the daemon's run
        partition_key=queued.partition_key,
        run_config=dict(queued.run_config),
        tags=queued.tags,
        instance=instance,
    )
    assert late.success
    rows = history_rows(lake)
    assert rows[:2] == [
        ("orders/wrong.csv", "rejected", 0, None, None, None, rows[0][6]),
        ("orders/good.csv", "loaded", 3, 1, 2, 0, None),
    ]
    assert rows[0][6].startswith("invalid_schema: header does not match the orders contract")
    skipped = {file: reason for file, status, *_, reason in rows[2:] if status == "skipped"}
    assert skipped == {
        "orders/good.csv": (
            "orders/good.csv: already loaded by another run (now archived/orders/good.csv)"
        ),
        "orders/wrong.csv": skipped["orders/wrong.csv"],
    }
    assert skipped["orders/wrong.csv"].startswith("orders/wrong.csv: already rejected")
    loaded = query(
        lake,
        "SELECT etag, landed_at::DATE::VARCHAR, table_version, files_in_commit, run_id, "
        "source_key FROM load_history WHERE status = 'loaded'",
    )
    (etag, landed_on, version, files_in_commit, run_id, source_key) = loaded[0]
    assert etag == lake.head("archived/orders/good.csv").etag
    assert (landed_on, version, files_in_commit, source_key) == (
        today(),
        1,
        1,
        "raw/orders/good.csv",
    )
    assert instance.get_run_by_id(run_id).job_name == "orders_ingest"

    # a re-process is a new delivery: loaded again, from the archive, exactly once
    (again,) = reprocess(instance, defs, ["orders/good.csv"], CONTRACTS)
    assert again.status == "OK"
    assert history_rows(lake, "status = 'loaded'")[-1][:6] == (
        "orders/good.csv", "loaded", 3, 1, 0, 2,
    )  # fmt: skip


def test_a_day_backfill_loads_the_days_rejected_file_after_a_contract_fix(lake_dir, instance):
    """The contract first requires a column one file lacks; fixed, a backfill of that day loads
    the file from rejected/ and leaves the day's other loads as they were."""
    strict = DatasetContract(
        name="shipments",
        raw_folder="shipments",
        description="Shipments of a carrier.",
        columns=(
            Column("shipment_id", "bigint"),
            Column("weight", "double"),
            Column("carrier", "string"),
        ),
        primary_key="shipment_id",
    )
    fixed = dataclasses.replace(
        strict, columns=(*strict.columns[:2], Column("carrier", "string", required=False))
    )
    lake = Lake(str(lake_dir))
    complete = csv_bytes([["shipment_id", "weight", "carrier"], [1, 2.5, "DHL"]])
    land(lake_dir, "shipments", complete, "a.csv")
    land(lake_dir, "shipments", csv_bytes([["shipment_id", "weight"], [2, 4.0]]), "b.csv")
    with registered([strict]):
        defs = build_defs({"LAKEHOUSE_URI": str(lake_dir)})
        assert sorted(r.status for r in ingest(instance, defs)) == ["OK", "REJECTED"]
        before = query(lake, "SELECT * EXCLUDE (_loaded_at) FROM shipments")
    with registered([fixed]):
        defs = build_defs({"LAKEHOUSE_URI": str(lake_dir)})
        backfill = ingest_job_run(defs, instance, "shipments")  # the day, as the UI runs it
        assert backfill.success
    assert files_under(lake_dir, "rejected") == []
    assert archived_files(lake_dir) == ["shipments/a.csv", "shipments/b.csv"]
    after = query(lake, "SELECT * EXCLUDE (_loaded_at) FROM shipments ORDER BY shipment_id")
    assert after[0] == before[0]  # a.csv's row, delivered again, is what it was
    assert after[1][:3] == (2, 4.0, None)
    statuses = query(
        lake,
        "SELECT file, list(status ORDER BY loaded_at) FROM load_history GROUP BY 1 ORDER BY 1",
    )
    assert statuses == [
        ("shipments/a.csv", ["loaded", "loaded"]),
        ("shipments/b.csv", ["rejected", "loaded"]),
    ]


def test_a_day_backfill_takes_only_that_days_uploads(lake_dir, instance):
    defs = build_defs({"LAKEHOUSE_URI": str(lake_dir)})
    yesterday = datetime.now(UTC) - timedelta(days=1)
    old = land(lake_dir, "orders", orders_file(1), "yesterday.csv")
    os.utime(lake_dir / old, (yesterday.timestamp(), yesterday.timestamp()))
    land(lake_dir, "orders", orders_file(10), "today.csv")
    ingest(instance, defs)
    runs = instance.get_runs(dg.RunsFilter(job_name="orders_ingest"))
    days = {run.tags["dagster/partition"] for run in runs}
    assert days == {yesterday.date().isoformat(), today()}
    result = ingest_job_run(defs, instance, "orders", day=yesterday.date().isoformat())
    files = materialized(result, "orders_validated")["files"]
    assert [r.data["file"] for r in files.records] == ["orders/yesterday.csv"]


def test_a_history_that_missed_commits_is_completed_by_the_next_run(
    lake_dir, instance, monkeypatch
):
    lake = Lake(str(lake_dir))
    defs = build_defs({"LAKEHOUSE_URI": str(lake_dir)})
    original = history.record_loads

    def unreachable(*args, **kwargs):
        raise OSError("the store did not answer")

    # while the history cannot be written: a load, then a re-process of the same upload
    monkeypatch.setattr(history, "record_loads", unreachable)
    land(lake_dir, "orders", orders_file(1), "first.csv")
    (first,) = ingest(instance, defs)
    assert first.status == "OK"  # the history never fails a load
    (again,) = reprocess(instance, defs, ["orders/first.csv"], CONTRACTS)
    assert again.status == "OK"
    assert not lake_has_table(lake, "load_history")
    monkeypatch.setattr(history, "record_loads", original)
    land(lake_dir, "orders", orders_file(10), "second.csv")
    ingest(instance, defs)
    # both deliveries of first.csv from the table's log, in one walk, each once, with their
    # commits' counts (what validation counted went with their batches, archived since; a run
    # killed after its commit leaves that for the next one)
    assert [r[:6] for r in history_rows(lake, "status = 'loaded'")] == [
        ("orders/first.csv", "loaded", None, None, 2, 0),
        ("orders/first.csv", "loaded", None, None, 0, 2),
        ("orders/second.csv", "loaded", 2, 0, 2, 0),
    ]
    # filling the same gap again, as a concurrent run would, records nothing twice
    manifest: dict = {}
    assert history.record_loads(lake, "orders", 3, run_id="x", known=manifest) == 0
    assert len(history_rows(lake, "status = 'loaded'")) == 3


def test_reprocess_loads_a_file_again_and_names_what_it_cannot_find(lake_dir):
    stack = local_stack(lake_dir)
    land(lake_dir, "orders", orders_file(1), "o.csv")
    assert run_cli(stack, "ingest").returncode == 0
    again = run_cli(stack, "reprocess", "raw/orders/o.csv")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "OK       orders/o.csv: 2 rows read; 0 inserted, 2 updated" in again.stdout
    missing = run_cli(stack, "reprocess", "orders/o.csv", "orders/nowhere.csv")
    assert missing.returncode == 1
    assert "orders/nowhere.csv: gone: in none of raw/, archived/ or rejected/" in missing.stderr
    assert "OK" not in missing.stdout  # nothing runs before every file is found
    elsewhere = run_cli(stack, "reprocess", "elsewhere/x.csv")
    assert "elsewhere/x.csv: not in a dataset's folder" in elsewhere.stderr


def test_a_day_run_that_fails_before_it_knows_its_files_is_still_reported(
    lake_dir, instance, monkeypatch
):
    def unlistable(*args, **kwargs):
        raise OSError("the bucket could not be listed")

    monkeypatch.setattr(ingest_config, "files_landed_on", unlistable)
    defs = build_defs({"LAKEHOUSE_URI": str(lake_dir)})
    result = ingest_job_run(defs, instance, "orders", raise_on_error=False)
    assert not result.success
    (report,) = reports_for_run(instance, instance.get_run_by_id(result.run_id))
    assert report.file_key == f"(the uploads that landed on {today()})"
    assert report.status == "FAILED"
    assert "the bucket could not be listed" in report.error
