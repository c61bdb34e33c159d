"""Freshness: from a file landing in raw/ to its rows being queryable, under `dagster dev`
(the daemon's sensor interval included), and from a TheLook order-items file landing to its
item counted in order_kpis_daily. Median over several files."""

import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.sql import duckdb_sql
from ecom_lakehouse.core.sql.duckdb_catalog import CatalogMissing, open_catalog
from ecom_lakehouse.names import FILE_TAG
from ecom_lakehouse_tests.dagster_dev import dagster_dev_process

REPO = Path(__file__).resolve().parents[1]
HEADER = ",".join(CONTRACTS["orders"].column_names)


def orders_csv(first_id: int, rows: int = 100) -> bytes:
    lines = [HEADER] + [
        f"1,{i},7,2025-04-01T10:00:00,12.5,2025-04-01" for i in range(first_id, first_id + rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def visible(lake: Lake, order_id: int) -> bool:
    try:
        con = open_catalog(lake)
    except CatalogMissing:
        return False
    try:
        row = con.execute(f"SELECT count(*) FROM orders WHERE order_id = {order_id}").fetchone()
        return bool(row and row[0])
    except duckdb.Error:
        return False
    finally:
        con.close()


def wait_until_visible(lake: Lake, order_id: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not visible(lake, order_id):
        if time.monotonic() > deadline:
            raise TimeoutError(f"order {order_id} not queryable after {timeout} s")
        time.sleep(0.1)


def where_the_time_went(home: Path, landed: dict[str, tuple[float, float]]) -> dict:
    """Median seconds of each leg of a file's way, from the instance's run records: landing ->
    run created (the sensor loop), -> run started (the queue and the worker's start-up), ->
    rows queryable (the run's steps)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        legs: dict[str, list[float]] = {"sensor": [], "queue and start-up": [], "run": []}
        for record in instance.get_run_records():
            file_key = record.dagster_run.tags.get(FILE_TAG)
            if file_key not in landed or record.start_time is None:
                continue
            at, visible_at = landed[file_key]
            created = record.create_timestamp.timestamp()
            legs["sensor"].append(created - at)
            legs["queue and start-up"].append(record.start_time - created)
            legs["run"].append(visible_at - record.start_time)
    return {leg: round(statistics.median(s), 2) for leg, s in legs.items() if s}


def thelook_csv(dataset: str, rows: list[list[object]]) -> bytes:
    lines = [",".join(CONTRACTS[dataset].source_column_names)]
    lines += [",".join(str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def thelook_order(order_id: int, day: int) -> list[object]:
    placed = f"2025-05-{day:02} 10:00:00.000000 UTC"
    return [order_id, 7, "Complete", "F", placed, "", "", "", 1]


def thelook_item(item_id: int, order_id: int) -> list[object]:
    return [item_id, order_id, 7, 1, 1, "Complete", "2025-06-01 10:00:00.000000 UTC", "", "",
            "", "10.5"]  # fmt: skip


def items_sold(lake: Lake, day: int) -> int:
    """The day's sold items as order_kpis_daily says (0 before the table or the row exists)."""
    table = lake.url(layout.table_path("order_kpis_daily"))
    try:
        con = duckdb_sql.connect(lake)
        row = con.execute(
            f"SELECT total_items_sold FROM delta_scan('{table}')"
            f" WHERE order_date = DATE '2025-05-{day:02}'"
        ).fetchone()
    except duckdb.Error:
        return 0
    return int(row[0]) if row else 0


def wait_for_kpi(lake: Lake, day: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while items_sold(lake, day) < 1:
        if time.monotonic() > deadline:
            raise TimeoutError(f"day {day}'s item not in order_kpis_daily after {timeout} s")
        time.sleep(0.1)


def measure_kpis(lake_dir: Path, files: int) -> list[float]:
    """From an order-items file landing to its item counted in order_kpis_daily: the load, then
    the KPI refresh declarative automation starts. Orders for every day are loaded first."""
    lake = Lake(str(lake_dir))
    days = range(1, files + 2)
    folders = {d: lake_dir / "raw" / CONTRACTS[d].raw_folder for d in
               ("thelook_products", "thelook_orders", "thelook_order_items")}  # fmt: skip
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    (folders["thelook_products"] / "p.csv").write_bytes(
        thelook_csv("thelook_products", [[1, 1.0, "Jeans", "J", "B", "10.5", "Men", "S", 1]])
    )
    orders = [thelook_order(5000 + d, d) for d in days]
    (folders["thelook_orders"] / "o.csv").write_bytes(thelook_csv("thelook_orders", orders))
    # warm-up: the first day's item creates the KPI table
    (folders["thelook_order_items"] / "i0.csv").write_bytes(
        thelook_csv("thelook_order_items", [thelook_item(1, 5001)])
    )
    wait_for_kpi(lake, 1, timeout=240)
    latencies = []
    for day in days[1:]:
        started = time.monotonic()
        (folders["thelook_order_items"] / f"i{day}.csv").write_bytes(
            thelook_csv("thelook_order_items", [thelook_item(day, 5000 + day)])
        )
        wait_for_kpi(lake, day)
        latencies.append(time.monotonic() - started)
    return latencies


def measure(files: int = 7, kpi_files: int = 5) -> dict:
    with (
        tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp_name,
        dagster_dev_process(
            lake_dir := Path(tmp_name, "lake"), home := Path(tmp_name, "home"), port=3999
        ),
    ):
        lake = Lake(str(lake_dir))
        raw = lake_dir / "raw/orders"
        raw.mkdir(parents=True)
        # warm-up: the first file creates the table and its catalog entry
        (raw / "warmup.csv").write_bytes(orders_csv(1))
        wait_until_visible(lake, 1, timeout=180)
        latencies = []
        landed: dict[str, tuple[float, float]] = {}  # file key -> (landed, queryable), epoch
        for n in range(files):
            first_id = 1000 * (n + 1)
            started, wall = time.monotonic(), time.time()
            (raw / f"f{n}.csv").write_bytes(orders_csv(first_id))
            wait_until_visible(lake, first_id)
            latencies.append(time.monotonic() - started)
            landed[f"orders/f{n}.csv"] = (wall, wall + latencies[-1])
        legs = where_the_time_went(home, landed)
        to_kpi = measure_kpis(lake_dir, kpi_files)
    return {
        "files": files,
        "median_s": round(statistics.median(latencies), 2),
        "min_s": round(min(latencies), 2),
        "max_s": round(max(latencies), 2),
        "median_legs_s": legs,
        "landing_to_kpi": {
            "files": kpi_files,
            "median_s": round(statistics.median(to_kpi), 2),
            "min_s": round(min(to_kpi), 2),
            "max_s": round(max(to_kpi), 2),
        },
    }
