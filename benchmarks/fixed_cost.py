"""Fixed cost: `ecom-lakehouse ingest` of one tiny file, from start to exit, and where the time
goes (imports, instance, sensor evaluation, the run, the catalog refresh)."""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = str(Path(sys.executable).parent / "ecom-lakehouse")
TINY = b"product_id,department_id,department,product_name\n1,1,Books,A\n2,1,Books,B\n"

PHASES = """
import json, sys, time
t0 = time.perf_counter()
import dagster as dg
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.runner.session import Timings
from ecom_lakehouse.runner.ingest import ingest
t1 = time.perf_counter()
defs = build_defs()
with dg.DagsterInstance.ephemeral() as instance:
    t2 = time.perf_counter()
    timings = Timings()
    reports = ingest(instance, defs, timings=timings)
assert all(r.success for r in reports)
print(json.dumps({"imports": t1 - t0, "definitions and instance": t2 - t1, **timings}))
"""


def _tiny_lake(root: Path) -> dict[str, str]:
    (root / "raw/products").mkdir(parents=True)
    (root / "raw/products/tiny.csv").write_bytes(TINY)
    env = {**os.environ, "LAKEHOUSE_URI": str(root)}
    env.pop("DAGSTER_HOME", None)
    return env


def measure(repeats: int = 3) -> dict:
    walls, phases = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            env = _tiny_lake(Path(tmp, "a"))
            started = time.perf_counter()
            subprocess.run([CLI, "ingest"], env=env, check=True, capture_output=True)
            walls.append(time.perf_counter() - started)
            env = _tiny_lake(Path(tmp, "b"))
            out = subprocess.run(
                [sys.executable, "-c", PHASES], env=env, check=True, capture_output=True, text=True
            ).stdout
            phases.append(json.loads(out.strip().splitlines()[-1]))
    breakdown = {k: round(statistics.median(p[k] for p in phases), 2) for k in phases[0]}
    return {"ingest_one_tiny_file_s": round(statistics.median(walls), 2), "breakdown_s": breakdown}
