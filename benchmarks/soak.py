"""Soak: `dagster dev` with the local instance settings while a transaction file lands every
second (`python -m benchmarks.soak [--minutes 10]`).

Reports what a day of such a stream does to the instance and the table: rows loaded, runs and
failed runs, partitions added, landing-to-archived lag (p50, p95, max, from each file's landing
time to the moment it was seen in ``archived/``), the instance's size on disk, and the daemon's
memory (RSS of the `dagster dev` process tree) at the start and at the end."""

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.sql import duckdb_sql
from ecom_lakehouse.generators.transactions import tick_files
from ecom_lakehouse_tests.dagster_dev import (
    dagster_dev_process,
    free_port,
    graphql,
    wait_until_answering,
)

RUNS = "{ runsOrError { ... on Runs { results { jobName status } } } }"


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (ps, in MB)."""
    table = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid=,rss="], capture_output=True, text=True, check=True
    ).stdout
    rows = [tuple(int(x) for x in line.split()) for line in table.splitlines() if line.strip()]
    children: dict[int, list[int]] = {}
    rss = {}
    for child, parent, kb in rows:
        children.setdefault(parent, []).append(child)
        rss[child] = kb
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo += children.get(current, [])
    return round(total / 1024, 1)


def folder_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


def table_rows(lake: Lake, table: str) -> int:
    con = duckdb_sql.connect(lake)
    try:
        uri = lake.url(layout.table_path(table))
        row = con.execute(f"SELECT count(*) FROM delta_scan('{uri}')").fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def failed_steps(instance: dg.DagsterInstance) -> list[str]:
    """Each failed run's job, step and first line of error (what to look at first)."""
    said = []
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])):
        for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
            event = record.dagster_event
            error = event.step_failure_data.error if event else None
            first = (error.message.strip().splitlines() or [""])[0] if error else "?"
            said.append(f"{run.job_name} {event.step_key if event else '?'}: {first[:300]}")
    return said


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def measure(minutes: float = 10, settle_s: float = 90) -> dict:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        lake_dir, home, port = Path(tmp, "lake"), Path(tmp, "home"), free_port()
        with dagster_dev_process(lake_dir, home, port) as process:
            wait_until_answering(port, process)
            time.sleep(10)  # the daemon's first loops
            memory_start = tree_rss_mb(process.pid)
            landed: dict[str, float] = {}
            archived_at: dict[str, float] = {}
            end = time.monotonic() + minutes * 60
            next_landing = time.monotonic()
            while time.monotonic() < end or (
                len(archived_at) < len(landed) and time.monotonic() < end + settle_s
            ):
                if next_landing <= time.monotonic() < end:  # a file a second
                    next_landing += 1
                    for key, data in tick_files(datetime.now(UTC), files=1, per_file=1):
                        path = lake_dir / "raw" / key
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(data)
                        landed[key] = time.time()
                for key in landed.keys() - archived_at.keys():  # looked for 5 times a second
                    if (lake_dir / "archived" / key).exists():
                        archived_at[key] = time.time()
                time.sleep(0.2)
            memory_end = tree_rss_mb(process.pid)
            runs = graphql(port, RUNS)["runsOrError"]["results"]
        with dg.DagsterInstance.from_config(str(home)) as instance:
            # the partitions the stream's runs used (landing days), and any per-file partitions
            # an instance of the older layout still holds
            days = instance.get_materialized_partitions(dg.AssetKey("transactions"))
            partitions = len(days) + len(instance.get_dynamic_partitions("transactions_files"))
            failures = failed_steps(instance)
        instance_mb = folder_mb(home)
        rows = table_rows(Lake(str(lake_dir)), "transactions")
    lags = [archived_at[k] - landed[k] for k in archived_at]
    ingest = [r for r in runs if r["jobName"] == "transactions_ingest"]
    return {
        "minutes": minutes,
        "files_landed": len(landed),
        "files_archived": len(archived_at),
        "rows": rows,
        "runs": len(runs),
        "ingest_runs": len(ingest),
        "failed_runs": sum(r["status"] == "FAILURE" for r in runs),
        "failures": failures,
        "partitions": partitions,
        "lag_s": {
            "p50": percentile(lags, 0.5) if lags else None,
            "p95": percentile(lags, 0.95) if lags else None,
            "max": round(max(lags), 2) if lags else None,
            "mean": round(statistics.fmean(lags), 2) if lags else None,
        },
        "instance_mb": instance_mb,
        "daemon_rss_mb": {"start": memory_start, "end": memory_end},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    print(json.dumps(measure(args.minutes), indent=2))


if __name__ == "__main__":
    main()
