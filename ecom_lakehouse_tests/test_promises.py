"""The tables' promises, as a user would break them: a key whose date changes, files arriving
out of order, many writers at once, and a process killed at every step and inside the commit.
After each, one row per key, the newest values, and every file in exactly one of archived/ or
rejected/."""

import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.read.readers import read_parts
from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse_tests.conftest import (
    Stack,
    archived_files,
    commits_per_upload,
    files_under,
    ingest_job_run,
    land,
    local_stack,
    materialized,
    query,
    s3_stack,
    shared_file,
)
from ecom_lakehouse_tests.files import (
    ITEMS_HEADER,
    ORDERS_HEADER,
    PRODUCTS_HEADER,
    csv_bytes,
    order,
)
from ecom_lakehouse_tests.s3_proxy import commit_killer

BIN = Path(sys.executable).parent
CLI = str(BIN / "ecom-lakehouse")


def cli_env(stack: Stack) -> dict[str, str]:
    env = {**os.environ, **stack.env}
    env.pop("DAGSTER_HOME", None)
    return env


def run_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, *args], env=cli_env(stack), capture_output=True, text=True, timeout=300, check=False
    )


def one_row_per_key(stack: Stack, table: str, key: str) -> int:
    ((rows, keys),) = query(stack, f"SELECT count(*), count(DISTINCT {key}) FROM {table}")
    assert rows == keys, f"{table}: {rows} rows for {keys} keys"
    return rows


# -- a key whose date changes ---------------------------------------------------------------


def shifted_items(count: int) -> bytes:
    """The first ``count`` lab5 order items again, each a day later (a corrected export)."""
    (sheet, *_) = read_parts(shared_file("lab5/order_items_apr_2025.xlsx"), "xlsx")
    rows = sheet.table.slice(0, count).drop_columns(["_source_row"]).to_pylist()
    shifted = []
    for row in rows:
        values = list(row.values())
        day = int(values[8][-2:]) + 1
        values[7] = values[7].replace(values[8], f"2025-04-{day:02}")
        values[8] = f"2025-04-{day:02}"
        shifted.append([int(v) if isinstance(v, float) else v for v in values])
    return csv_bytes([ITEMS_HEADER, *shifted])


def test_a_key_whose_date_changes_moves_and_stays_unique(stack, instance):
    land(stack.lake, "order-items", shared_file("lab5/order_items_apr_2025.xlsx"))
    assert all(r.success for r in ingest(instance, stack.defs))
    land(stack.lake, "order-items", shifted_items(500), "corrected.csv")
    (report,) = ingest(instance, stack.defs)
    assert report.success, report.error
    updated = report.metadata["order_items"]["rows_updated"]
    assert (updated, report.checks["id_unique_and_not_null"]) == (500, True)
    assert one_row_per_key(stack, "order_items", "id") == 40803
    moved = query(
        stack,
        "SELECT count(*), min(date), max(date), count(DISTINCT _source_file) FROM order_items"
        " WHERE _source_file = 'order-items/corrected.csv'",
    )
    assert moved == [(500, date(2025, 4, 2), date(2025, 4, 2), 1)]
    # the moved rows live in their new partition's files only
    assert query(
        stack,
        "SELECT count(*) FROM order_items WHERE id <= 500 AND date = DATE '2025-04-01'",
    ) == [(0,)]


# -- files out of order -------------------------------------------------------------------------


def test_an_older_file_processed_later_changes_nothing(stack, instance):
    """A (older values) lands first, then B (newer): both orders of processing end with B's
    values, and the run of the stale file says how many rows it kept back. Processing A after B
    is a backfill of A from the archive."""
    older = csv_bytes([ORDERS_HEADER, order(1, amount=1), order(2, amount=1)])
    newer = csv_bytes([ORDERS_HEADER, order(1, amount=2), order(3, amount=2)])
    defs = stack.defs
    land(stack.lake, "orders", older, "a.csv")
    assert ingest(instance, defs)[0].success
    land(stack.lake, "orders", newer, "b.csv")
    (b,) = ingest(instance, defs)
    assert (b.metadata["orders"]["rows_updated"], b.metadata["orders"]["rows_stale"]) == (1, 0)
    # A again, re-processed from archived/ (a backfill): it keeps its own, older upload version
    result = ingest_job_run(defs, instance, "orders", ["orders/a.csv"])
    assert result.success
    stale = materialized(result, "orders")
    assert (stale["rows_inserted"], stale["rows_updated"], stale["rows_stale"]) == (0, 1, 1)
    assert query(stack, "SELECT order_id, total_amount FROM orders ORDER BY 1") == [
        (1, Decimal("2.00")),
        (2, Decimal("1.00")),
        (3, Decimal("2.00")),
    ]
    assert "1 kept back as stale" in stale_line(instance, result.run_id)


def stale_line(instance: dg.DagsterInstance, run_id: str) -> str:
    from ecom_lakehouse.defs.reports import reports_for_run

    run = instance.get_run_by_id(run_id)
    assert run is not None
    (report,) = reports_for_run(instance, run)
    return report.summary()


def test_a_newer_sequence_wins_over_a_later_upload(stack, instance):
    later_time = csv_bytes([ORDERS_HEADER, order(1, "2025-04-01T12:00:00", amount=2)])
    earlier_time = csv_bytes([ORDERS_HEADER, order(1, "2025-04-01T09:00:00", amount=1)])
    land(stack.lake, "orders", later_time, "a.csv")
    ingest(instance, stack.defs)
    land(stack.lake, "orders", earlier_time, "b.csv")  # uploaded later, but an older order state
    (report,) = ingest(instance, stack.defs)
    assert report.metadata["orders"]["rows_stale"] == 1
    assert query(stack, "SELECT total_amount FROM orders") == [(Decimal("2.00"),)]


# -- crashes ------------------------------------------------------------------------------------


def land_mixed(lake: Lake) -> None:
    """Good files of three datasets and one rejected file; the orders (three files and the
    rejected one) are one batch, so a crash finds a batch in flight."""
    products = [PRODUCTS_HEADER, [1, 1, "Books", "A"], [2, 1, "Books", "B"]]
    land(lake, "products", csv_bytes(products), "p.csv")
    for part, ids in enumerate((range(1, 14), range(14, 27), range(27, 40)), start=1):
        orders = [ORDERS_HEADER, *(order(i, f"2025-04-0{1 + i % 3}T10:00:00") for i in ids)]
        land(lake, "orders", csv_bytes(orders), f"o{part}.csv")
    items = [ITEMS_HEADER] + [
        [i, 1 + i % 39, 7, "", 1 + i % 2, 1, 0, "2025-04-02T10:00:00", "2025-04-02"]
        for i in range(1, 60)
    ]
    land(lake, "order-items", csv_bytes(items), "i.csv")
    land(lake, "orders", b"order_id,amount\n1,2\n", "wrong.csv")


def assert_converged(stack: Stack) -> None:
    assert files_under(stack.lake, "raw") == []
    assert archived_files(stack.lake) == [
        "order-items/i.csv",
        "orders/o1.csv",
        "orders/o2.csv",
        "orders/o3.csv",
        "products/p.csv",
    ]
    rejected = files_under(stack.lake, "rejected")
    wrong = "invalid_schema/orders/wrong.csv"
    assert rejected == [wrong, f"{wrong}.reason.json"]
    assert one_row_per_key(stack, "products", "product_id") == 2
    assert one_row_per_key(stack, "orders", "order_id") == 39
    assert one_row_per_key(stack, "order_items", "id") == 59
    assert query(stack, "SELECT sum(total_amount) FROM orders") == [(Decimal("409.50"),)]
    # no file applied twice: each upload's transaction is in exactly one commit
    commits = commits_per_upload(stack.lake, "orders")
    assert len(commits) == 3 and set(commits.values()) == {1}, commits
    # and the history has each load once, whichever run recorded it (a crash after the commit
    # leaves it to the re-run, which finds it in the table's log)
    loads = query(
        stack,
        "SELECT file, count(*), min(rows_read) FROM load_history WHERE status = 'loaded' "
        "GROUP BY file ORDER BY file",
    )
    assert loads == [
        ("order-items/i.csv", 1, 59),
        ("orders/o1.csv", 1, 13),
        ("orders/o2.csv", 1, 13),
        ("orders/o3.csv", 1, 13),
        ("products/p.csv", 1, 2),
    ]


CRASH_POINTS = ["after_validation", "after_commit", "during_archive", "during_catalog_refresh"]


@pytest.mark.parametrize(
    ("point", "kind"), [*((p, "local") for p in CRASH_POINTS), ("during_archive", "s3")]
)
def test_a_run_killed_at_any_step_converges_on_a_rerun(tmp_path, request, point, kind):
    """Locally every step; on S3 the archive's copy-then-delete (a folder renames instead)."""
    if kind == "s3":
        stack = s3_stack(request.getfixturevalue("moto_endpoint"))
    else:
        stack = local_stack(tmp_path / "lake")
    land_mixed(stack.lake)
    crashed = subprocess.run(
        [sys.executable, "-m", "ecom_lakehouse_tests.crashing", point, "ingest"],
        env=cli_env(stack), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert crashed.returncode == -9, crashed.stdout + crashed.stderr
    rerun = run_cli(stack, "ingest")
    assert "FAILED" not in rerun.stdout, rerun.stdout + rerun.stderr
    assert_converged(stack)


def test_a_run_killed_inside_the_commit_converges_on_a_rerun(moto_endpoint):
    stack = s3_stack(moto_endpoint)
    land_mixed(stack.lake)
    with commit_killer(moto_endpoint, "orders") as (proxy, killer):
        env = {**cli_env(stack), "AWS_ENDPOINT_URL": proxy}
        crashed = subprocess.Popen([CLI, "ingest"], env=env, stdout=subprocess.DEVNULL)
        killer.victim = crashed.pid
        assert crashed.wait(timeout=300) == -9
    assert killer.killed.is_set()
    # the data files are there, the log does not name them: the table does not have them
    assert any(k.endswith(".parquet") for k in files_under(stack.lake, "processed/orders"))
    rerun = run_cli(stack, "ingest")
    assert "FAILED" not in rerun.stdout, rerun.stdout + rerun.stderr
    assert_converged(stack)


# -- many writers -------------------------------------------------------------------------------


def test_concurrent_ingests_all_succeed_with_exact_counts(stack):
    """Several `ecom-lakehouse ingest` processes (each its own Dagster instance, so no pool
    serialises them) started together on one lake with overlapping files, round after round."""
    expected: dict[int, Decimal] = {}
    rounds = 4 if stack.kind == "local" else 2
    for round_ in range(rounds):
        base = round_ * 100
        spans = [(0, 60), (40, 100), (20, 80)]  # overlapping order ids within a round
        for n, (low, high) in enumerate(spans):
            amount = round_ * 10 + n + 1
            rows = [order(base + i, amount=amount) for i in range(low, high)]
            land(stack.lake, "orders", csv_bytes([ORDERS_HEADER, *rows]), f"r{round_}-{n}.csv")
            # the same timestamp: the later upload wins each id
            expected.update({base + i: Decimal(amount) for i in range(low, high)})
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        processes = [
            subprocess.Popen([CLI, "ingest"], env=cli_env(stack), **pipes) for _ in range(3)
        ]
        outputs = [p.communicate(timeout=300) for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0], outputs
        assert files_under(stack.lake, "raw") == []
        assert one_row_per_key(stack, "orders", "order_id") == len(expected)
        found = dict(query(stack, "SELECT order_id, total_amount FROM orders"))
        assert found == expected, round_
    assert len(archived_files(stack.lake)) == 3 * rounds


# -- quiet output ---------------------------------------------------------------------------------


def test_ingest_prints_a_line_per_file_and_no_stack_trace_for_rejected_files(tmp_path):
    stack = local_stack(tmp_path / "lake")
    land(stack.lake, "orders", csv_bytes([ORDERS_HEADER, order(1)]), "good.csv")
    for n in range(6):
        land(stack.lake, "orders", b"order_id,amount\n1,2\n", f"wrong{n}.csv")
        land(stack.lake, "orders", b"\x00\x01 not a workbook", f"broken{n}.xlsx")
    result = run_cli(stack, "ingest")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("lake: ")
    assert sum(line.startswith("REJECTED ") for line in lines) == 12
    assert sum(line.startswith("OK ") for line in lines) == 1
    # the KPI tables fed by orders were refreshed
    assert sorted(line.split()[1] for line in lines if line.startswith("KPI ")) == [
        "department_sales_daily:",
        "sales_daily:",
    ]
    assert lines[-1] == "1 file(s) loaded, 12 rejected, 0 failed"
    assert len(lines) == 17
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "Stack Trace" not in output
    assert result.stderr == ""


def test_a_real_error_says_so_in_one_line_and_shows_its_traceback_with_v(tmp_path):
    stack = local_stack(tmp_path / "lake")
    land(stack.lake, "orders", csv_bytes([ORDERS_HEADER, order(1)]), "o.csv")
    (tmp_path / "lake" / "processed").write_text("not a folder")  # the table cannot be written
    quiet = run_cli(stack, "ingest")
    assert quiet.returncode == 1
    (failed,) = [line for line in quiet.stdout.splitlines() if line.startswith("FAILED ")]
    assert "orders/o.csv" in failed and "Traceback" not in quiet.stdout + quiet.stderr
    verbose = run_cli(stack, "ingest", "-v")
    assert "Traceback" in verbose.stdout + verbose.stderr


def test_the_audit_columns_answer_which_file_gave_a_row(tmp_path):
    stack = local_stack(tmp_path / "lake")
    land(stack.lake, "orders", csv_bytes([ORDERS_HEADER, order(1), order(2)]), "first.csv")
    run_cli(stack, "ingest")
    land(stack.lake, "orders", csv_bytes([ORDERS_HEADER, order(2, amount=3)]), "second.csv")
    run_cli(stack, "ingest")
    rows = query(
        stack,
        "SELECT order_id, _source_file, _source_version > 0, _loaded_at IS NOT NULL FROM orders"
        " ORDER BY 1",
    )
    assert rows == [(1, "orders/first.csv", True, True), (2, "orders/second.csv", True, True)]
    columns = [r[0] for r in query(stack, "SELECT column_name FROM (DESCRIBE orders)")]
    assert columns[-3:] == ["_source_file", "_source_version", "_loaded_at"]
