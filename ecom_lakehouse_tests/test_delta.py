"""The delta-rs load: one row per key in the whole table, newest wins, exactly once per upload,
audit columns on every row."""

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.lake.uploads import Upload
from ecom_lakehouse.core.read.readers import read_parts
from ecom_lakehouse.core.sql import duckdb_sql
from ecom_lakehouse.core.tables import delta
from ecom_lakehouse.core.tables.delta import merge_upload, table_row_count, with_source
from ecom_lakehouse.core.tables.key_locations import locate_keys
from ecom_lakehouse.core.validate.validation import validate
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order

ORDERS = CONTRACTS["orders"]
DAY1, DAY2 = "2025-04-01T10:00:00", "2025-04-02T10:00:00"


def batch(*rows) -> pa.Table:
    return validate(ORDERS, read_parts(csv_bytes([ORDERS_HEADER, *rows]), "csv"), "t").valid


def table_uri(lake_dir: Path) -> str:
    return Lake(str(lake_dir)).url(layout.table_path("orders"))


def merge(uri: str, rows: pa.Table, file: str, version: int, **kw):
    lake = Lake(str(Path(uri).parents[1]))  # the table is <lake>/processed/orders
    return merge_upload(ORDERS, lake, rows, Upload(file, "e", version, **kw))


def table(uri: str, columns: str = "order_id, total_amount") -> list[tuple]:
    con = duckdb_sql.connect(Lake(uri))
    return con.execute(f"SELECT {columns} FROM delta_scan('{uri}') ORDER BY 1").fetchall()


def amounts(uri: str) -> dict[int, Decimal]:
    return dict(table(uri))


def test_merge_inserts_then_upserts_on_the_key(tmp_path):
    uri = table_uri(tmp_path)
    first = merge(uri, batch(order(1), order(2)), "a", 1)
    assert (first.inserted, first.updated, first.table_version) == (2, 0, 1)
    second = merge(uri, batch(order(2, amount=99), order(3)), "b", 2)
    assert (second.inserted, second.updated, second.stale) == (1, 1, 0)
    assert amounts(uri) == {1: Decimal("10.50"), 2: Decimal("99.00"), 3: Decimal("10.50")}
    assert table_row_count(uri, {}) == 3


def test_a_key_whose_date_changes_moves_to_its_new_partition(tmp_path):
    uri = table_uri(tmp_path)
    merge(uri, batch(order(1, DAY1), order(2, DAY1)), "a", 1)
    moved = merge(uri, batch(order(1, DAY2, amount=5)), "b", 2)
    assert (moved.inserted, moved.updated) == (0, 1)
    assert table(uri, "order_id, date, total_amount") == [
        (1, date(2025, 4, 2), Decimal("5.00")),
        (2, date(2025, 4, 1), Decimal("10.50")),
    ]
    files = DeltaTable(uri).file_uris()
    assert sum("date=2025-04-02" in f for f in files) == 1  # the old row's file was rewritten


def test_a_moved_key_is_found_in_any_partition_when_statistics_cannot_tell(tmp_path):
    """Ids spread over the days (each file's key range covers the others'): the load reads the
    key column to find where each key is, and prunes to those partitions only."""
    uri = table_uri(tmp_path)
    days = [f"2025-04-0{d}T10:00:00" for d in (1, 2, 3, 4)]
    merge(uri, batch(*(order(i, days[i % 4]) for i in range(1, 41))), "a", 1)
    # key 5 lives on day 2; it comes back on day 4, beside key 8 (unchanged, on day 1)
    rows = batch(order(5, days[3], amount=1), order(8, days[0]))
    audited = with_source(ORDERS, rows, Upload("b", "e", 2))
    where = locate_keys(Lake(str(tmp_path)), DeltaTable(uri), ORDERS, audited)
    assert where.partitions == [date(2025, 4, 1), date(2025, 4, 2), date(2025, 4, 4)]
    outcome = merge(uri, rows, "b", 2)
    assert (outcome.inserted, outcome.updated) == (0, 2)
    assert table(uri, "count(*), count(DISTINCT order_id)") == [(40, 40)]
    assert table(uri, "order_id, date")[4] == (5, date(2025, 4, 4))


def test_the_newest_row_wins_whatever_order_files_arrive_in(tmp_path):
    newer = batch(order(1, "2025-04-01T11:00:00", amount=2))
    older = batch(order(1, "2025-04-01T10:00:00", amount=1))
    for name, sequence in (("in_order", [older, newer]), ("out_of_order", [newer, older])):
        uri = table_uri(tmp_path / name)
        outcomes = [merge(uri, rows, f"f{i}", version=i) for i, rows in enumerate(sequence)]
        assert amounts(uri) == {1: Decimal("2.00")}, name
    assert (outcomes[1].updated, outcomes[1].stale) == (0, 1)  # the older file, kept back


def test_on_the_same_sequence_the_later_upload_wins_in_either_order(tmp_path):
    first, second = batch(order(1, amount=1)), batch(order(1, amount=2))
    uri = table_uri(tmp_path / "late")
    merge(uri, second, "b", 200)
    late = merge(uri, first, "a", 100)  # an older upload (a backfill) processed last
    assert (late.updated, late.stale) == (0, 1)
    assert amounts(uri) == {1: Decimal("2.00")}


def test_every_row_says_where_it_came_from(tmp_path):
    uri = table_uri(tmp_path)
    merge(uri, batch(order(1), order(2)), "orders/a.csv", 100)
    merge(uri, batch(order(2, amount=3)), "orders/b.csv", 200)
    rows = table(uri, "order_id, _source_file, _source_version, _loaded_at IS NOT NULL")
    assert rows == [(1, "orders/a.csv", 100, True), (2, "orders/b.csv", 200, True)]


def test_an_upload_is_applied_exactly_once_from_the_txn_in_the_table(tmp_path):
    uri = table_uri(tmp_path)
    rows = batch(order(1), order(2))
    merge(uri, rows, "orders/a.csv", 100)
    merge(uri, batch(order(1, amount=5)), "b", 200)  # a later upload changes a row
    replay = merge(uri, rows, "orders/a.csv", 100)  # a crash after the first commit
    assert replay.already_committed
    assert amounts(uri)[1] == Decimal("5.00")
    assert DeltaTable(uri).transaction_version("ecom-lakehouse/orders/orders/a.csv@e") == 100
    # a re-delivery of the same upload (re-processed from the archive) is applied again, as
    # the upload it is: its rows stay older than the later upload's
    again = merge(uri, rows, "orders/a.csv", 100, delivery=300)
    assert (again.already_committed, again.inserted, again.updated, again.stale) == (
        False,
        0,
        1,
        1,
    )
    assert amounts(uri) == {1: Decimal("5.00"), 2: Decimal("10.50")}


def test_a_newer_upload_of_identical_rows_records_itself_on_them(tmp_path):
    uri = table_uri(tmp_path)
    rows = batch(order(1), order(2))
    merge(uri, rows, "a", 1)
    again = merge(uri, rows, "a", 2)
    assert (again.inserted, again.updated, again.stale) == (0, 2, 0)
    assert table(uri, "order_id, _source_version") == [(1, 2), (2, 2)]
    assert DeltaTable(uri).transaction_version("ecom-lakehouse/orders/a@e") == 2


def test_tables_are_partitioned_by_date_and_readable_by_every_engine(tmp_path):
    uri = table_uri(tmp_path)
    merge(uri, batch(order(1, DAY1), order(2, DAY2)), "a", 1)
    delta = DeltaTable(uri)
    assert delta.metadata().partition_columns == ["date"]
    assert delta.protocol().min_reader_version == 1  # UTC timestamps, no timestampNtz
    assert sorted(p.name for p in Path(uri).glob("date=*")) == [
        "date=2025-04-01",
        "date=2025-04-02",
    ]


def test_rows_that_cannot_match_are_appended_and_the_rest_merged(tmp_path):
    uri = table_uri(tmp_path)
    merge(uri, batch(order(10, DAY1)), "a", 1)
    # ids no file's statistics can hold, on any day: appended, exactly once like a merge
    new_ids = batch(order(20, DAY2), order(21, DAY2))
    assert (merge(uri, new_ids, "b", 2).inserted, merge(uri, new_ids, "b", 2).inserted) == (2, 0)
    below = merge(uri, batch(order(5, DAY1)), "c", 3)
    assert (below.inserted, below.updated) == (1, 0)
    # an id inside a file's key range (now on a later day): merged, and moved
    mixed = merge(uri, batch(order(20, "2025-04-03T09:00:00", amount=9), order(30, DAY2)), "d", 4)
    assert (mixed.inserted, mixed.updated) == (1, 1)
    assert table(uri, "order_id, date") == [
        (5, date(2025, 4, 1)),
        (10, date(2025, 4, 1)),
        (20, date(2025, 4, 3)),
        (21, date(2025, 4, 2)),
        (30, date(2025, 4, 2)),
    ]
    history = [c.get("operation") for c in DeltaTable(uri).history()]
    assert history[:4] == ["MERGE", "WRITE", "WRITE", "WRITE"]


def test_a_file_without_good_rows_is_recorded_once(tmp_path):
    uri = table_uri(tmp_path)
    empty = batch(order(1, amount=-1))  # rejected by a rule: no good row
    assert empty.num_rows == 0
    first = merge(uri, empty, "a", 1)
    assert (first.inserted, first.already_committed) == (0, False)
    assert merge(uri, empty, "a", 1).already_committed
    assert table_row_count(uri, {}) == 0


def test_a_table_that_keeps_changing_under_a_load_fails_it_saying_so(tmp_path, monkeypatch):
    uri = table_uri(tmp_path)
    merge(uri, batch(order(10)), "a", 1)
    real_append = delta.write_deltalake
    others = iter(range(100, 200))

    def another_writer_first(table, data, **kwargs):
        other = with_source(ORDERS, batch(order(next(others))), Upload("other", "e", 1))
        real_append(
            uri, delta.loaded_batches(ORDERS, other, datetime.now(UTC)), mode="append"
        )  # commits between the look and the commit
        return real_append(table, data, **kwargs)

    monkeypatch.setattr(delta, "write_deltalake", another_writer_first)
    monkeypatch.setattr(delta.time, "sleep", lambda seconds: None)
    with pytest.raises(delta.TableBusy, match="stay in raw/"):
        merge(uri, batch(order(20)), "b", 2)
    assert 20 not in amounts(uri)  # nothing of it was written
    assert len(amounts(uri)) == 1 + delta.COMMIT_ATTEMPTS  # the other writer's rows all landed


@pytest.mark.parametrize("fresh_table", [True, False])
def test_a_batch_read_from_its_file_loads_as_the_same_rows_in_memory(tmp_path, fresh_table):
    """The validated batch's Parquet file is streamed into an append (never read whole) and
    read whole for a MERGE or when two files of the batch share a key; either way the table is
    what the rows in memory make, and a batch written before the contract gained a column reads
    NULL there."""
    rows = [order(1, DAY1), order(2, DAY2, amount=5), order(3, DAY1)]
    a = with_source(ORDERS, batch(*rows), Upload("a", "e", 1))
    b = with_source(ORDERS, batch(order(3, DAY2, amount=7), order(4, DAY2)), Upload("b", "e", 2))
    rows_of_batch = pa.concat_tables([a, b]).drop_columns(["user_id"])  # an older contract
    path = tmp_path / "batch.parquet"
    pq.write_table(rows_of_batch, path)
    results = []
    for name, source in (("file", path), ("memory", rows_of_batch)):
        lake = Lake(str(tmp_path / name))
        if not fresh_table:
            merge_upload(ORDERS, lake, batch(order(1, DAY1, amount=1)), Upload("z", "e", 0))
        uploads = [Upload("a", "e", 1), Upload("b", "e", 2)]
        outcome = delta.merge_batch(ORDERS, lake, source, uploads)
        uri = table_uri(tmp_path / name)
        results.append((outcome, table(uri, "order_id, total_amount, user_id, date")))
    assert results[0] == results[1]
    (outcome, loaded) = results[0]
    assert (outcome.inserted + outcome.updated, outcome.stale) == (4, 1)
    assert [r[:2] for r in loaded] == [(1, Decimal("10.50")), (2, Decimal("5.00")),
                                       (3, Decimal("7.00")), (4, Decimal("10.50"))]  # fmt: skip
    assert {r[2] for r in loaded if r[0] != 1 or fresh_table} == {None}
