from decimal import Decimal

import pyarrow as pa
from deltalake import DeltaTable

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core import duckdb_catalog
from ecom_lakehouse.core.delta import merge_batch, table_row_count
from ecom_lakehouse.core.readers import read_parts
from ecom_lakehouse.core.storage import Lake
from ecom_lakehouse.core.uploads import Upload
from ecom_lakehouse.core.validation import validate
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order

ORDERS = CONTRACTS["orders"]


def batch(*rows) -> pa.Table:
    return validate(ORDERS, read_parts(csv_bytes([ORDERS_HEADER, *rows]), "csv"), "t").valid


def rows_of(uri: str) -> dict[int, Decimal]:
    con = duckdb_catalog.connect(Lake(uri))
    found = con.execute(f"SELECT order_id, total_amount FROM delta_scan('{uri}')").fetchall()
    return dict(found)


def test_merge_inserts_then_upserts_on_the_key(tmp_path):
    uri = str(tmp_path / "orders")
    first = merge_batch(
        ORDERS,
        uri,
        {},
        batch(order(1), order(2)),
        Upload("a", "e", 1),
    )
    assert (first.inserted, first.updated, first.table_version) == (2, 0, 1)
    second = merge_batch(
        ORDERS,
        uri,
        {},
        batch(order(2, amount=99), order(3)),
        Upload("b", "e", 1),
    )
    assert (second.inserted, second.updated, second.unchanged) == (1, 1, 0)
    assert rows_of(uri) == {1: Decimal("10.50"), 2: Decimal("99.00"), 3: Decimal("10.50")}
    assert table_row_count(uri, {}) == 3


def test_an_upload_is_applied_exactly_once_from_the_txn_in_the_table(tmp_path):
    uri = str(tmp_path / "orders")
    rows = batch(order(1), order(2))
    merge_batch(
        ORDERS,
        uri,
        {},
        rows,
        Upload("orders/a.csv", "e", 100),
    )
    # another file changes a row; then the first upload is replayed (a crash after its commit)
    merge_batch(
        ORDERS,
        uri,
        {},
        batch(order(1, amount=5)),
        Upload("b", "e", 1),
    )
    replay = merge_batch(
        ORDERS,
        uri,
        {},
        rows,
        Upload("orders/a.csv", "e", 100),
    )
    assert replay.already_committed
    assert rows_of(uri)[1] == Decimal("5.00")  # the replay did not undo the later change
    table = DeltaTable(uri)
    assert table.transaction_version("ecom-lakehouse/orders/orders/a.csv@e") == 100
    # a newer upload of the same key is applied
    newer = merge_batch(
        ORDERS,
        uri,
        {},
        batch(order(1, amount=7)),
        Upload("orders/a.csv", "e", 200),
    )
    assert (newer.already_committed, newer.updated) == (False, 1)


def test_reloading_identical_rows_rewrites_nothing_but_records_the_upload(tmp_path):
    uri = str(tmp_path / "orders")
    rows = batch(order(1), order(2))
    merge_batch(
        ORDERS,
        uri,
        {},
        rows,
        Upload("a", "e", 1),
    )
    files_before = set(DeltaTable(uri).file_uris())
    again = merge_batch(
        ORDERS,
        uri,
        {},
        rows,
        Upload("a", "e", 2),
    )
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert set(DeltaTable(uri).file_uris()) == files_before
    assert DeltaTable(uri).transaction_version("ecom-lakehouse/orders/a@e") == 2


def test_tables_are_partitioned_by_date_and_readable_by_every_engine(tmp_path):
    uri = str(tmp_path / "orders")
    merge_batch(
        ORDERS,
        uri,
        {},
        batch(order(1, "2025-04-01T10:00:00"), order(2, "2025-04-02T10:00:00")),
        Upload("a", "e", 1),
    )
    table = DeltaTable(uri)
    assert table.metadata().partition_columns == ["date"]
    assert table.protocol().min_reader_version == 1  # UTC timestamps, no timestampNtz
    assert sorted(p.name for p in (tmp_path / "orders").glob("date=*")) == [
        "date=2025-04-01",
        "date=2025-04-02",
    ]


def test_rows_that_cannot_match_are_appended_and_the_rest_merged(tmp_path):
    uri = str(tmp_path / "orders")
    day1, day2 = "2025-04-01T10:00:00", "2025-04-02T10:00:00"
    merge_batch(
        ORDERS,
        uri,
        {},
        batch(order(1, day1)),
        Upload("a", "e", 1),
    )
    # a new day only: appended, exactly once like a merge
    new_day = batch(order(2, day2), order(3, day2))
    appended = merge_batch(
        ORDERS,
        uri,
        {},
        new_day,
        Upload("b", "e", 1),
    )
    assert (appended.inserted, appended.updated) == (2, 0)
    assert merge_batch(
        ORDERS,
        uri,
        {},
        new_day,
        Upload("b", "e", 1),
    ).already_committed
    # a held day, but ids above every id that day holds (from the log's statistics): appended
    later = merge_batch(
        ORDERS,
        uri,
        {},
        batch(order(5, day1)),
        Upload("c", "e", 1),
    )
    assert (later.inserted, later.updated) == (1, 0)
    # a held day and an id within its range: merged (order 1 exists and is updated)
    mixed = batch(order(1, day1, amount=9), order(4, "2025-04-03T10:00:00"))
    merged = merge_batch(
        ORDERS,
        uri,
        {},
        mixed,
        Upload("d", "e", 1),
    )
    assert (merged.inserted, merged.updated) == (1, 1)
    assert rows_of(uri) == {
        1: Decimal("9.00"),
        2: Decimal("10.50"),
        3: Decimal("10.50"),
        4: Decimal("10.50"),
        5: Decimal("10.50"),
    }
    history = [c.get("operation") for c in DeltaTable(uri).history()]
    assert history[:4] == ["MERGE", "WRITE", "WRITE", "WRITE"]


def test_a_file_without_good_rows_is_recorded_once(tmp_path):
    uri = str(tmp_path / "orders")
    empty = batch(order(1, amount=-1))  # rejected by a rule: no good row
    assert empty.num_rows == 0
    first = merge_batch(
        ORDERS,
        uri,
        {},
        empty,
        Upload("a", "e", 1),
    )
    assert (first.inserted, first.already_committed) == (0, False)
    again = merge_batch(
        ORDERS,
        uri,
        {},
        empty,
        Upload("a", "e", 1),
    )
    assert again.already_committed
    assert table_row_count(uri, {}) == 0
