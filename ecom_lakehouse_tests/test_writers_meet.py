"""Several writers on one lake: a run never fails because its files moved.

The daemon queues runs for what its sensor saw; `ecom-lakehouse ingest` (or a second daemon)
takes the same files first. The daemon's runs then find the files loaded and archived, or
rejected, and end successfully, saying where each file is. A landing day materialized again
re-processes its files from wherever they are, `rejected/` included; a re-executed run retries
exactly its uploads."""

import dagster as dg

from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.sql import duckdb_sql
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.defs.reports import reports_for_run
from ecom_lakehouse.names import RAW_SENSOR
from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse_tests.conftest import (
    archived_files,
    files_under,
    ingest_job_run,
    land,
    query,
)
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order, xlsx_bytes

GOOD = csv_bytes([ORDERS_HEADER, *(order(i) for i in range(1, 4))])
WRONG_HEADER = csv_bytes([["id", "when"], [1, "2025-04-01"]])
TRUNCATED = xlsx_bytes({"2025-04-01": [ORDERS_HEADER, order(9)]})[:200]


def land_three(lake_dir) -> None:
    land(lake_dir, "orders", GOOD, "good.csv")
    land(lake_dir, "orders", WRONG_HEADER, "wrong_header.csv")
    land(lake_dir, "orders", TRUNCATED, "truncated.xlsx")


def orders_job_of_this_module() -> dg.JobDefinition:
    """The orders job for a re-execution, which rebuilds it from a module-level function (one
    of this module's own: Dagster keeps what such a function built, per function, for the
    process, and other tests build it on other lakes)."""
    return build_defs().resolve_job_def("orders_ingest")


def the_daemons_requests(defs: dg.Definitions, instance: dg.DagsterInstance) -> list:
    """What the daemon's sensor queues now (its runs start later)."""
    sensor = defs.get_repository_def().get_sensor_def(RAW_SENSOR)
    result = sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
    return list(result.run_requests or [])


def execute(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest):
    return defs.resolve_job_def(request.job_name).execute_in_process(
        partition_key=request.partition_key,
        run_config=dict(request.run_config),
        tags=request.tags,
        instance=instance,
        raise_on_error=False,
    )


def every_file_in_one_place(lake_dir) -> dict[str, list[str]]:
    return {
        "raw": files_under(lake_dir, "raw"),
        "archived": archived_files(lake_dir),
        "rejected": sorted(
            k for k in files_under(lake_dir, "rejected") if not k.startswith("records/")
        ),
    }


def files_table(run, asset: str) -> dict[str, dict]:
    for event in run.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return {r.data["file"]: r.data for r in materialization.metadata["files"].value.records}
    return {}


def test_the_daemons_runs_succeed_after_ingest_took_their_files(lake_dir, instance):
    defs = build_defs({"LAKEHOUSE_URI": str(lake_dir)})
    land_three(lake_dir)
    queued = the_daemons_requests(defs, instance)
    assert len(queued) == 1  # the three files, one batch

    reports = ingest(instance, defs)  # the CLI gets there first
    assert sorted(r.status for r in reports) == ["OK", "REJECTED", "REJECTED"]

    run = execute(defs, instance, queued[0])
    assert run.success
    outcomes = files_table(run, "orders_validated")
    assert {f: o["status"] for f, o in outcomes.items()} == {
        "orders/good.csv": "skipped",
        "orders/wrong_header.csv": "skipped",
        "orders/truncated.xlsx": "skipped",
    }
    assert outcomes["orders/good.csv"]["reason"] == "already loaded by another run"
    assert outcomes["orders/good.csv"]["now_at"] == "archived/orders/good.csv"
    assert outcomes["orders/wrong_header.csv"]["now_at"] == (
        "rejected/invalid_schema/orders/wrong_header.csv"
    )
    # nothing was left to load: the table is not materialized again, nothing is archived
    # nothing downstream: only validation's files table, and the skips in the load history
    materialized = {e.asset_key.to_user_string() for e in run.get_asset_materialization_events()}
    assert materialized == {"orders_validated", "load_history"}
    assert every_file_in_one_place(lake_dir) == {
        "raw": [],
        "archived": ["orders/good.csv"],
        "rejected": [
            "invalid_schema/orders/wrong_header.csv",
            "invalid_schema/orders/wrong_header.csv.reason.json",
            "unreadable/orders/truncated.xlsx",
            "unreadable/orders/truncated.xlsx.reason.json",
        ],
    }
    assert query(defs_lake(defs), "SELECT count(*) FROM orders") == [(3,)]


def defs_lake(defs: dg.Definitions):
    return defs.resources["lake"].lake()


def from_table(lake_dir, select: str, table: str) -> tuple:
    """A row straight from the Delta table (the catalog is another asset's to refresh)."""
    lake = Lake(str(lake_dir))
    con = duckdb_sql.connect(lake)
    return con.execute(
        f"SELECT {select} FROM delta_scan('{lake.url(layout.table_path(table))}')"
    ).fetchone()


def test_a_landing_day_materialized_again_rereads_its_rejected_file(lake_dir, instance):
    defs = build_defs({"LAKEHOUSE_URI": str(lake_dir)})
    land(lake_dir, "orders", WRONG_HEADER, "wrong_header.csv")
    (report,) = ingest(instance, defs)
    assert report.status == "REJECTED"
    rejected = layout.rejected_file_key("invalid_schema", "orders/wrong_header.csv")

    # the UI's "Materialize" on the day's partition: no config, a re-process of the day
    again = ingest_job_run(defs, instance, "orders", raise_on_error=False)
    assert again.success
    outcome = files_table(again, "orders_validated")["orders/wrong_header.csv"]
    assert (outcome["status"], outcome["moved_to"]) == ("rejected", rejected)
    assert "missing columns" in outcome["reason"]
    assert files_under(lake_dir, "rejected") == [
        rejected.removeprefix(layout.REJECTED),
        layout.reason_key(rejected).removeprefix(layout.REJECTED),
    ]

    # after a fix (here: the file in rejected/ is now one the contract takes), it loads from
    # there, lands in archived/, and leaves no reason behind
    (lake_dir / rejected).write_bytes(GOOD)
    fixed = ingest_job_run(defs, instance, "orders", raise_on_error=False)
    assert fixed.success
    assert files_under(lake_dir, "rejected") == []
    assert archived_files(lake_dir) == ["orders/wrong_header.csv"]
    assert from_table(lake_dir, "count(*), min(_source_file)", "orders") == (
        3,
        "orders/wrong_header.csv",
    )


def test_a_reexecuted_run_that_rejected_its_file_succeeds_and_notifies_nothing_new(
    lake_dir, instance, monkeypatch
):
    defs = build_defs({"LAKEHOUSE_URI": str(lake_dir)})
    land(lake_dir, "orders", WRONG_HEADER, "wrong_header.csv")
    (queued,) = the_daemons_requests(defs, instance)
    first = execute(defs, instance, queued)
    assert first.success  # a rejected file is the file's outcome, not a failed run
    assert files_table(first, "orders_validated")["orders/wrong_header.csv"]["status"] == (
        "rejected"
    )
    (parent,) = instance.get_runs()
    monkeypatch.setenv("LAKEHOUSE_URI", str(lake_dir))
    again = dg.execute_job(
        dg.reconstructable(orders_job_of_this_module),
        instance,
        reexecution_options=dg.ReexecutionOptions(parent_run_id=parent.run_id),
        tags=parent.tags,
    )
    assert again.success
    (report,) = reports_for_run(instance, instance.get_run_by_id(again.run_id))
    assert (report.status, report.moved_to) == (
        "SKIPPED",
        "rejected/invalid_schema/orders/wrong_header.csv",
    )
