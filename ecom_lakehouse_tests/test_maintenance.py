"""Table maintenance: compaction, checkpoint, log clean-up and VACUUM keep the rows, the
catalog and exactly-once; VACUUM keeps what the retention protects."""

import subprocess
from pathlib import Path

from deltalake import DeltaTable

from ecom_lakehouse.contracts import CONTRACTS, table_specs
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.pipeline import load_batch, validate_batch
from ecom_lakehouse.core.sql.duckdb_catalog import rebuild_catalog
from ecom_lakehouse.core.sql.duckdb_sql import connect
from ecom_lakehouse.core.tables.maintenance import maintain_table
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.generators.transactions import generate
from ecom_lakehouse.names import MAINTENANCE_JOB, MAINTENANCE_SCHEDULE, maintenance_op, table_pool
from ecom_lakehouse_tests.conftest import commits_per_upload, files_under, land, query
from ecom_lakehouse_tests.files import PRODUCTS_HEADER, csv_bytes
from ecom_lakehouse_tests.test_promises import CLI, cli_env, local_stack

TRANSACTIONS = CONTRACTS["transactions"]


def load_one_upload_per_commit(lake: Lake, files: int, seed: int = 11) -> list[str]:
    """``files`` transaction files landed, each validated and merged as a batch of its own (a
    commit and a data file each, as a stream loaded file by file leaves a table)."""
    generate(Path(lake.uri) / "raw", orders=files, days=2, seed=seed)
    keys = [layout.file_key(info.key) for info in lake.list("raw/transactions/")]
    for number, key in enumerate(keys):
        validate_batch(lake, TRANSACTIONS, [key], f"one-{number}")
        load_batch(lake, TRANSACTIONS, f"one-{number}")
    return keys


def table_rows(lake: Lake) -> list[tuple]:
    uri = lake.url(layout.table_path("transactions"))
    con = connect(lake)
    try:
        return con.sql(f"SELECT * FROM delta_scan('{uri}') ORDER BY transaction_id").fetchall()
    finally:
        con.close()


def data_files_on_disk(lake: Lake) -> list[str]:
    """The table's data files in the store (the log's and the change feed's left out)."""
    return [
        key
        for key in files_under(lake, "processed/transactions")
        if key.endswith(".parquet") and not key.startswith(("_delta_log/", "_change_data/"))
    ]


def test_200_small_uploads_maintained_keep_their_rows_catalog_and_exactly_once(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    keys = load_one_upload_per_commit(lake, 200)
    rebuild_catalog(lake, table_specs())
    rows = table_rows(lake)
    data_files = data_files_on_disk(lake)

    report = maintain_table(lake, TRANSACTIONS)

    assert report is not None
    assert report.before.files == len(data_files) >= 200
    assert report.before.partitions == report.after.partitions == 2
    assert report.after.most_files_in_a_partition <= 2, report
    assert report.files_compacted == report.before.files
    assert report.files_vacuumed == 0  # everything compacted away is younger than 7 days
    assert report.retention_hours == 168
    assert set(data_files) <= set(
        data_files_on_disk(lake)
    )  # still there for readers of older versions
    assert table_rows(lake) == rows
    assert query(lake, "SELECT count(*) FROM transactions") == [(200,)]  # the catalog's view
    assert any(k.endswith(".checkpoint.parquet") for k in files_under(lake, "processed"))

    # Exactly-once survives compaction, the checkpoint and the log's clean-up: every upload
    # is still known as applied, and delivering one again writes nothing.
    version = DeltaTable(lake.url(layout.table_path("transactions"))).version()
    again = load_batch(lake, TRANSACTIONS, "one-0")
    assert again.outcome.committed_before == (keys[0],)
    assert DeltaTable(lake.url(layout.table_path("transactions"))).version() == version
    assert len(commits_per_upload(lake, "transactions")) == 200
    assert set(commits_per_upload(lake, "transactions").values()) == {1}
    assert table_rows(lake) == rows


def test_vacuum_keeps_the_retention_unless_the_operator_shortens_it(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    load_one_upload_per_commit(lake, 12)
    rows = table_rows(lake)
    uri = lake.url(layout.table_path("transactions"))
    DeltaTable(uri).alter.set_table_properties(
        {"delta.deletedFileRetentionDuration": "interval 2 days"}
    )

    first = maintain_table(lake, TRANSACTIONS)
    assert first is not None and first.retention_hours == 48 and first.files_vacuumed == 0

    explicit = maintain_table(lake, TRANSACTIONS, retention_hours=0)
    assert explicit is not None
    assert explicit.files_compacted == 0  # already compact: nothing rewritten twice
    assert explicit.files_vacuumed == first.files_compacted
    assert table_rows(lake) == rows
    assert maintain_table(Lake(str(tmp_path / "empty")), TRANSACTIONS) is None


def test_a_product_table_is_z_ordered_by_its_key_once_and_then_left_alone(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    products = CONTRACTS["products"]
    for number, ids in enumerate([(5, 1, 9), (2, 8), (7, 3, 6, 4)]):
        rows = [[i, 1, "Books", f"p{i}"] for i in ids]
        key = layout.file_key(
            land(lake, "products", csv_bytes([PRODUCTS_HEADER, *rows]), f"{number}.csv")
        )
        validate_batch(lake, products, [key], f"p-{number}")
        load_batch(lake, products, f"p-{number}")

    first = maintain_table(lake, products)
    again = maintain_table(lake, products)

    assert first is not None and first.z_ordered_by == ("product_id",)
    assert (first.before.files, first.after.files, first.files_compacted) == (3, 1, 3)
    assert again is not None and (again.z_ordered_by, again.files_compacted) == ((), 0)
    uri = lake.url(layout.table_path("products"))
    con = connect(lake)
    try:
        ids = con.sql(f"SELECT product_id FROM delta_scan('{uri}')").fetchall()
    finally:
        con.close()
    assert [i for (i,) in ids] == list(range(1, 10))  # the file holds them in key order


def test_maintenance_is_a_job_in_each_tables_pool_with_a_nightly_schedule():
    defs = build_defs({"LAKEHOUSE_URI": "/unused"})
    job = defs.resolve_job_def(MAINTENANCE_JOB)
    for spec in (CONTRACTS["orders"], CONTRACTS["transactions"]):
        assert job.graph.node_named(maintenance_op(spec)).definition.pool == table_pool(spec)
    schedule = defs.resolve_schedule_def(MAINTENANCE_SCHEDULE)
    assert schedule.cron_schedule == "0 3 * * *" and schedule.job_name == MAINTENANCE_JOB
    custom = build_defs({"LAKEHOUSE_URI": "/unused", "LAKEHOUSE_MAINTENANCE_CRON": "30 1 * * 0"})
    assert custom.resolve_schedule_def(MAINTENANCE_SCHEDULE).cron_schedule == "30 1 * * 0"


def test_ecom_lakehouse_maintain_reports_each_table(tmp_path):
    stack = local_stack(tmp_path / "lake")
    generate(Path(stack.lake.uri) / "raw", orders=6, days=2, seed=5)
    env = {**cli_env(stack), "LAKEHOUSE_MAX_FILES_PER_RUN": "1"}
    subprocess.run([CLI, "ingest"], env=env, check=True, capture_output=True, timeout=300)

    done = subprocess.run(
        [CLI, "maintain", "--table", "transactions", "--table", "orders"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("OK       transactions: 6 -> 2 data files") for line in lines), lines
    assert "SKIPPED  orders: no Delta table yet" in lines
    assert query(stack.lake, "SELECT count(*) FROM transactions") == [(6,)]
    unknown = subprocess.run(
        [CLI, "maintain", "--table", "nope"], env=env, capture_output=True, text=True, check=False
    )
    assert unknown.returncode == 2 and "unknown table(s) ['nope']" in unknown.stderr
    assert "Traceback" not in unknown.stderr
