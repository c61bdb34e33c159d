"""Incremental cost: merging a 10,000-row batch into a table of millions of rows should cost
about what it costs into an empty table, because the merge predicate prunes to the batch's
date partitions."""

import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.delta import merge_batch

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
    return pa.table(columns).cast(ITEMS.arrow_schema)


def measure(big_rows: int = 5_000_000, batch_rows: int = 10_000, repeats: int = 3) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        big_uri = str(Path(tmp, "big"))
        chunk = 1_000_000
        for start in range(0, big_rows, chunk):
            write_deltalake(
                big_uri,
                items_table(start, min(chunk, big_rows - start), 365, 0, seed=start),
                partition_by=["date"],
                mode="append",
            )
        timings: dict[str, list[float]] = {"empty": [], "big": []}
        for attempt in range(repeats):
            # new lines for the two most recent days, as a day's file brings
            batch = items_table(big_rows + attempt * batch_rows, batch_rows, 2, 363, seed=attempt)
            for target in ("empty", "big"):
                uri = str(Path(tmp, f"empty{attempt}")) if target == "empty" else big_uri
                started = time.perf_counter()
                merge_batch(
                    ITEMS, uri, {}, batch, file_key=f"b{attempt}", etag="e", upload_version=1
                )
                timings[target].append(time.perf_counter() - started)
    empty, big = statistics.median(timings["empty"]), statistics.median(timings["big"])
    return {
        "table_rows": big_rows,
        "batch_rows": batch_rows,
        "into_empty_s": round(empty, 3),
        "into_big_s": round(big, 3),
        "ratio": round(big / empty, 2),
    }
