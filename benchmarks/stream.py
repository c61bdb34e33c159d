"""Throughput for a stream of small files: 1,000 transaction files (one JSON object each, as the
generator writes them) landed at once, until every row is queryable.

- the floor: read each file with pyarrow and write them all with one ``write_deltalake``;
- ``ecom-lakehouse ingest`` (validation, rejects, exactly-once commits, archive, catalog);
- ``dagster dev`` with the sensor on, from the moment the files landed.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.json as pajson
from deltalake import write_deltalake

from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.core.sql.duckdb_catalog import CatalogMissing, open_catalog
from ecom_lakehouse.generators.transactions import generate
from ecom_lakehouse_tests.dagster_dev import dagster_dev_process, free_port

HERE = Path(__file__).resolve().parent
CLI = str(Path(sys.executable).parent / "ecom-lakehouse")


def inputs(files: int, seed: int = 5) -> Path:
    folder = HERE / ".cache" / f"transactions-{files}-seed-{seed}"
    if not (folder / "done").exists():
        shutil.rmtree(folder, ignore_errors=True)
        generate(folder / "raw", orders=files, days=2, seed=seed)
        (folder / "done").touch()
    return folder / "raw"


def floor(raw: Path, work: Path) -> float:
    """pyarrow reads each file, one write_deltalake writes them (no checks, no exactly-once)."""
    started = time.perf_counter()
    tables = [pajson.read_json(path) for path in sorted(raw.rglob("*.json"))]
    write_deltalake(str(work / "floor"), pa.concat_tables(tables, promote_options="default"))
    return time.perf_counter() - started


def landed_copy(raw: Path, lake_dir: Path) -> None:
    shutil.copytree(raw, lake_dir / "raw", dirs_exist_ok=True)


def cli(raw: Path, work: Path) -> float:
    lake_dir = work / "cli"
    landed_copy(raw, lake_dir)
    env = {**os.environ, "LAKEHOUSE_URI": str(lake_dir)}
    env.pop("DAGSTER_HOME", None)  # an ephemeral instance, as on a fresh machine
    started = time.perf_counter()
    done = subprocess.run([CLI, "ingest"], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    return seconds


def rows_queryable(lake: Lake) -> int:
    try:
        con = open_catalog(lake)
    except CatalogMissing:
        return 0
    try:
        row = con.execute("SELECT count(*) FROM transactions").fetchone()
        return int(row[0]) if row else 0
    except duckdb.Error:
        return 0
    finally:
        con.close()


def under_dagster_dev(raw: Path, work: Path, expected: int, timeout: float = 600) -> float:
    lake_dir = work / "dev" / "lake"
    lake_dir.mkdir(parents=True)
    with dagster_dev_process(lake_dir, work / "dev" / "home", port=free_port()):
        time.sleep(20)  # the UI and the daemon up (they start before any file lands)
        started = time.monotonic()
        landed_copy(raw, lake_dir)
        while rows_queryable(Lake(str(lake_dir))) < expected:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"not all {expected} rows queryable after {timeout} s")
            time.sleep(0.2)
        return time.monotonic() - started


def measure(files: int = 1000, repeat: int = 3, dagster_dev: bool = True) -> dict:
    raw = inputs(files)
    floors, clis = [], []
    for _ in range(repeat):  # interleaved, so a slow spell falls on both
        with tempfile.TemporaryDirectory() as tmp:
            floors.append(floor(raw, Path(tmp)))
            clis.append(cli(raw, Path(tmp)))
    report: dict = {
        "files": files,
        "floor_s": round(min(floors), 2),
        "ingest_s": round(min(clis), 2),
        "ingest/floor": round(min(clis) / min(floors), 2),
    }
    if dagster_dev:
        with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
            report["dagster_dev_landing_to_queryable_s"] = round(
                under_dagster_dev(raw, Path(tmp), files), 2
            )
    return report


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)))
