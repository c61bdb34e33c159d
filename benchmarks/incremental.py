"""Incremental cost: loading a 10,000-row batch into a table of millions of rows should cost
about what it costs into an empty or small table.

Two batches, each for the two most recent days: **new lines** (new ids: from the log's
partition values and key statistics no row can match, so they are appended) and **updates**
(existing lines with new values: a MERGE whose predicate prunes to the batch's partitions).
New lines go into an empty table and into the big one; updates go into a small table holding
only the big one's two most recent days (the same partitions, so the same rows to match) and
into the big one."""

import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

from benchmarks.run import settle
from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.lake.uploads import Upload
from ecom_lakehouse.core.tables.delta import (
    merge_upload,
    open_or_create,
    with_every_validated_column,
)

ITEMS = CONTRACTS["order_items"]
START = date(2024, 1, 1)


def items_table(first_id: int, rows: int, days: int, first_day: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    day = rng.integers(first_day, first_day + days, rows)
    dates = np.array([START + timedelta(days=int(d)) for d in range(first_day, first_day + days)])
    seconds = rng.integers(0, 86_400, rows)
    ts = (
        np.array([np.datetime64(d, "s") for d in dates])[day - first_day]
        + seconds.astype("timedelta64[s]")
    ).astype("datetime64[us]")
    columns = {
        "id": np.arange(first_id, first_id + rows, dtype=np.int64),
        "order_id": rng.integers(10_000, 10_000_000, rows),
        "user_id": rng.integers(1_000, 10_000, rows),
        "days_since_prior_order": rng.integers(0, 31, rows).astype(np.int32),
        "product_id": rng.integers(1, 1_000, rows),
        "add_to_cart_order": rng.integers(1, 10, rows).astype(np.int32),
        "reordered": rng.integers(0, 2, rows).astype(np.int32),
        "order_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "date": pa.array(dates[day - first_day], pa.date32()),
    }
    # as validation gives them: the contract's columns and the (empty) rescued data
    return with_every_validated_column(ITEMS, pa.table(columns)).cast(ITEMS.arrow_schema)


def _table(lake: Lake) -> str:
    return lake.url(layout.table_path(ITEMS.name))


def _timed_load(lake: Lake, batch: pa.Table, file_key: str) -> float:
    started = time.perf_counter()
    merge_upload(ITEMS, lake, batch, Upload(file_key, "e", 1))
    return time.perf_counter() - started


def _updated(rows: pa.Table, by: int) -> pa.Table:
    """The same lines, each with a changed value."""
    column = rows.schema.get_field_index("add_to_cart_order")
    return rows.set_column(
        column, "add_to_cart_order", pc.add(rows.column(column), pa.scalar(by, pa.int32()))
    )


def measure(big_rows: int = 5_000_000, batch_rows: int = 10_000, repeats: int = 7) -> dict:
    timings: dict[str, list[float]] = {
        k: [] for k in ("new_empty", "new_big", "upd_small", "upd_big")
    }
    with tempfile.TemporaryDirectory() as tmp:
        big = Lake(str(Path(tmp, "big")))
        chunk = 1_000_000
        for start in range(0, big_rows, chunk):
            write_deltalake(
                _table(big),
                items_table(start, min(chunk, big_rows - start), 365, 0, seed=start),
                partition_by=["date"],
                mode="append",
            )
        recent = [START + timedelta(days=363), START + timedelta(days=364)]
        held = DeltaTable(_table(big)).to_pyarrow_table(filters=[("date", "in", recent)])
        held = held.cast(ITEMS.arrow_schema)
        open_or_create(ITEMS, _table(big), {})  # the audit columns added once, before timing
        settle()
        for attempt in range(repeats):
            new = items_table(big_rows + attempt * batch_rows, batch_rows, 2, 363, seed=attempt)
            empty = Lake(str(Path(tmp, f"empty{attempt}")))
            timings["new_empty"].append(_timed_load(empty, new, f"new{attempt}"))
            timings["new_big"].append(_timed_load(big, new, f"new{attempt}"))

            small = Lake(str(Path(tmp, f"small{attempt}")))
            write_deltalake(_table(small), held, partition_by=["date"])
            changed = _updated(held.slice(0, batch_rows), by=attempt + 1)
            timings["upd_small"].append(_timed_load(small, changed, f"upd{attempt}"))
            timings["upd_big"].append(_timed_load(big, changed, f"upd{attempt}"))
    median = {k: statistics.median(v) for k, v in timings.items()}
    return {
        "table_rows": big_rows,
        "batch_rows": batch_rows,
        "new_lines": {
            "into_empty_s": round(median["new_empty"], 3),
            "into_big_s": round(median["new_big"], 3),
            "ratio": round(median["new_big"] / median["new_empty"], 2),
        },
        "updates": {
            "into_small_s": round(median["upd_small"], 3),
            "into_big_s": round(median["upd_big"], 3),
            "ratio": round(median["upd_big"] / median["upd_small"], 2),
        },
    }
