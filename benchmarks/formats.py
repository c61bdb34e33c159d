"""Every input format at the floor's pace: one orders file of CSV, JSON lines or Parquet at two
sizes 10x apart, loaded by the floor (the format's pyarrow reader plus one ``write_deltalake``)
and by this project's code path (``project`` in ``contenders.py``: validation, rejects, the
merge, the checks, the archive), each run in its own process. Reports per format the per-row
cost (the slope between the sizes: fixed costs cancel) and peak memory at the larger size, as
ratios to the floor's in the same run."""

from pathlib import Path

import duckdb

from benchmarks.run import CACHE, _run_once, best_of, settle, slopes

FORMATS = {"csv": "(FORMAT csv, HEADER)", "jsonl": "(FORMAT json)", "parquet": "(FORMAT parquet)"}

# Valid orders (every contract rule holds), keys unique, dates over a month.
ORDERS = """
SELECT i % 1000 AS order_num, i AS order_id, (i * 7) % 100000 AS user_id,
       TIMESTAMP '2025-04-01 00:00:00' + to_seconds(i % (30 * 86400)) AS order_timestamp,
       CAST(10 + (i % 1000) / 10 AS DECIMAL(12, 2)) AS total_amount,
       CAST(TIMESTAMP '2025-04-01 00:00:00' + to_seconds(i % (30 * 86400)) AS DATE) AS date
FROM range(1, {rows} + 1) AS t(i)
"""


def orders_file(fmt: str, rows: int) -> Path:
    """A folder laid out like raw/ holding one orders file (kept between runs)."""
    folder = CACHE / f"format-{fmt}-{rows}"
    path = folder / "orders" / f"orders.{fmt}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        duckdb.sql(f"COPY ({ORDERS.format(rows=rows)}) TO '{partial}' {FORMATS[fmt]}")
        partial.rename(path)
    return folder


def measure(sizes: tuple[int, int] = (200_000, 2_000_000), repeat: int = 2) -> dict:
    report: dict = {}
    for fmt in FORMATS:
        runs: dict[str, dict[int, list[dict]]] = {}
        for _ in range(repeat):
            for rows in sizes:
                folder = orders_file(fmt, rows)
                for name in ("floor", "project"):
                    settle()
                    runs.setdefault(name, {}).setdefault(rows, []).append(_run_once(name, folder))
        best = {name: {n: best_of(r) for n, r in by_size.items()} for name, by_size in runs.items()}
        per_row = slopes(best, {n: n for n in sizes})
        large = max(sizes)
        report[fmt] = {
            "floor_s": best["floor"][large]["seconds"],
            "project_s": best["project"][large]["seconds"],
            "per_row": round(per_row["project"] / per_row["floor"], 2),
            "peak_memory": round(
                best["project"][large]["peak_mb"] / best["floor"][large]["peak_mb"], 2
            ),
            "peak_mb": {
                "floor": best["floor"][large]["peak_mb"],
                "project": best["project"][large]["peak_mb"],
            },
        }
        print(f"format {fmt}:", report[fmt], flush=True)
    return report
