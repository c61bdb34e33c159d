from datetime import UTC, datetime, timedelta

import dagster as dg

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core.lake.landing import RawCursor, batches
from ecom_lakehouse.core.lake.landing import scan as scan_with
from ecom_lakehouse.core.lake.storage import ObjectInfo
from ecom_lakehouse.defs.ingest import landing_days
from ecom_lakehouse.defs.sensors import day_partition
from ecom_lakehouse.names import FILE_TAG, RAW_SENSOR
from ecom_lakehouse.resources.settings import SensorSettings
from ecom_lakehouse_tests.conftest import land, today
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order

LOOKBACK = timedelta(seconds=SensorSettings().lookback_seconds)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def obj(key: str, seconds: float = 0, etag: str = "e1") -> ObjectInfo:
    return ObjectInfo(key, T0 + timedelta(seconds=seconds), etag, 10)


def scan(listing, cursor):
    return scan_with(listing, cursor, LOOKBACK, list(CONTRACTS.values()))


def keys(tick) -> list[str]:
    return [f"raw/{f.upload.file_key}" for f in tick.new_files]


def test_new_files_are_picked_in_load_order_and_seen_ones_are_not():
    listing = [
        obj("raw/order-items/i.xlsx", 1),
        obj("raw/orders/o.xlsx", 3),
        obj("raw/products/p.csv", 5),
    ]
    tick = scan(listing, RawCursor())
    assert keys(tick) == ["raw/products/p.csv", "raw/orders/o.xlsx", "raw/order-items/i.xlsx"]
    assert tick.cursor.high_water == T0 + timedelta(seconds=5)
    again = scan(listing, RawCursor.parse(tick.cursor.dump()))
    assert keys(again) == []


def test_a_tick_over_an_empty_raw_zone_leaves_a_cursor_the_next_tick_reads():
    empty = scan([], RawCursor())
    tick = scan([obj("raw/orders/o.xlsx")], RawCursor.parse(empty.cursor.dump()))
    assert keys(tick) == ["raw/orders/o.xlsx"]


def test_a_reupload_with_new_content_is_picked_again():
    first = scan([obj("raw/orders/o.xlsx", 1, "e1")], RawCursor())
    second = scan([obj("raw/orders/o.xlsx", 2, "e2")], first.cursor)
    assert keys(second) == ["raw/orders/o.xlsx"]
    assert second.new_files[0].upload.run_key == "raw/orders/o.xlsx@e2@1767225602000"


def test_the_same_content_uploaded_again_is_a_new_upload():
    first = scan([obj("raw/orders/o.xlsx", 1, "e1")], RawCursor())
    again = scan([obj("raw/orders/o.xlsx", 30, "e1")], first.cursor)
    assert keys(again) == ["raw/orders/o.xlsx"]


def test_an_object_that_appears_late_with_an_older_timestamp_is_still_seen():
    first = scan([obj("raw/orders/a.csv", 100)], RawCursor())
    # a multipart upload started before the last tick, visible only now
    late = scan([obj("raw/orders/a.csv", 100), obj("raw/orders/slow.csv", 40)], first.cursor)
    assert keys(late) == ["raw/orders/slow.csv"]


def test_the_cursor_forgets_keys_outside_the_lookback_window():
    old = obj("raw/orders/old.csv", 0)
    new = obj("raw/orders/new.csv", LOOKBACK.total_seconds() + 60)
    tick = scan([old, new], RawCursor())
    assert set(tick.cursor.recent) == {"raw/orders/new.csv"}
    # the old file is below the window: listed again, it is not re-requested
    assert keys(scan([old, new], tick.cursor)) == []


def test_hidden_temporary_and_unknown_files_are_never_requested():
    listing = [
        obj("raw/orders/.DS_Store"),
        obj("raw/orders/~$book.xlsx"),
        obj("raw/orders/_SUCCESS"),
        obj("raw/elsewhere/x.csv"),
        obj("raw/loose.csv"),
    ]
    tick = scan(listing, RawCursor())
    assert keys(tick) == []
    assert tick.unroutable == ["raw/elsewhere/x.csv", "raw/loose.csv"]
    assert keys(scan(listing, tick.cursor)) == []


def test_the_sensor_requests_a_run_per_file_on_the_day_it_landed(lake_dir, defs, instance):
    land(lake_dir, "orders", csv_bytes([ORDERS_HEADER, order(1)]), "o.csv")
    land(lake_dir, "products", b"product_id,department_id,department,product_name\n", "p.csv")
    sensor = defs.get_repository_def().get_sensor_def(RAW_SENSOR)
    context = dg.build_sensor_context(instance=instance, resources=defs.resources)
    result = sensor(context)
    assert [(r.job_name, r.partition_key, r.tags[FILE_TAG]) for r in result.run_requests] == [
        ("products_ingest", today(), "products/p.csv"),
        ("orders_ingest", today(), "orders/o.csv"),
    ]
    assert all(r.run_key.startswith(f"raw/{r.tags[FILE_TAG]}@") for r in result.run_requests)
    assert not result.dynamic_partitions_requests
    second = sensor(
        dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=result.cursor)
    )
    assert second.run_requests == []


def test_a_batch_never_spans_two_landing_days():
    # four files either side of midnight (UTC), one dataset: two runs, a day each
    midnight = datetime(2026, 1, 2, tzinfo=UTC) - T0
    listing = [obj(f"raw/orders/o{n}.csv", midnight.total_seconds() + s) for n, s in
               enumerate((-2, -1, 1, 2))]  # fmt: skip
    planned = batches(scan(listing, RawCursor()).new_files, max_files=10, max_bytes=10**9)
    assert [(str(b.day), [f.upload.file_key for f in b.files]) for b in planned] == [
        ("2026-01-01", ["orders/o0.csv", "orders/o1.csv"]),
        ("2026-01-02", ["orders/o2.csv", "orders/o3.csv"]),
    ]


def test_a_file_stamped_outside_the_landing_days_runs_on_the_nearest_one():
    days = landing_days("2025-01-01")
    assert day_partition(days, datetime(2025, 3, 4, tzinfo=UTC).date()) == "2025-03-04"
    # a copy that kept its old time: the first day; a clock ahead of ours: today
    assert day_partition(days, datetime(2019, 5, 6, tzinfo=UTC).date()) == "2025-01-01"
    assert day_partition(days, (datetime.now(UTC) + timedelta(days=3)).date()) == today()
