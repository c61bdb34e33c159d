"""The benchmark suite: `python -m benchmarks.run` (see the README's Performance section).

Generates inputs at two scales with the project's generator, loads the same files with each
contender in its own process (wall time, rows/s, peak memory), and reports the per-row cost (the
slope between the scales) as ratios against the floor and the naive baseline, measured in the
same run; then freshness under the daemon, the incremental merge cost and the fixed cost.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ecom_lakehouse.generate import generate

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"


def inputs(orders: int, seed: int = 11) -> tuple[Path, int]:
    """Generated files for a scale (kept between runs: generating is not what is measured)."""
    folder = CACHE / f"orders-{orders}-seed-{seed}"
    marker = folder / "rows.json"
    if not marker.exists():
        files = generate(folder / "files", orders=orders, seed=seed)
        marker.write_text(json.dumps(files.rows))
    rows = sum(json.loads(marker.read_text()).values())
    return folder / "files", rows


def run_contender(name: str, input_dir: Path, repeat: int) -> dict:
    """The median of ``repeat`` runs, each in a fresh process."""
    runs = sorted((_run_once(name, input_dir) for _ in range(repeat)), key=lambda r: r["seconds"])
    return runs[len(runs) // 2] | {"runs": len(runs)}


def _run_once(name: str, input_dir: Path) -> dict:
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.contenders", name, str(input_dir), work],
            cwd=HERE.parent, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        out = child.stdout.read() if child.stdout else ""
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"{name} failed on {input_dir}")
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "rows": result["rows"],
        "seconds": round(result["seconds"], 3),
        "wall_s": round(wall, 3),
        "rows_per_s": round(result["rows"] / result["seconds"]),
        "peak_mb": round(usage.ru_maxrss / 1024),  # Linux reports KiB
    }


def slopes(results: dict[str, dict[int, dict]], rows: dict[int, int]) -> dict[str, float]:
    """Seconds per million rows between the smallest and largest scale: the per-row cost, with
    everything that does not grow with the data (start-up, imports, fixed overheads) removed."""
    small, large = min(rows), max(rows)
    return {
        name: (by_scale[large]["seconds"] - by_scale[small]["seconds"])
        / (rows[large] - rows[small])
        * 1e6
        for name, by_scale in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=int, nargs=2, default=[20_000, 100_000], metavar="ORDERS")
    parser.add_argument(
        "--contenders", nargs="+", default=["floor", "baseline", "project", "project_dagster"]
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per contender and scale (median reported)"
    )
    parser.add_argument(
        "--baseline-repeat", type=int, default=1, help="the slow naive baseline: fewer runs"
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["freshness", "incremental", "fixed"]
    )
    parser.add_argument("--incremental-rows", type=int, default=5_000_000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args()

    report: dict = {"scales": {}, "contenders": {}}
    rows: dict[int, int] = {}
    for orders in args.scales:
        input_dir, rows[orders] = inputs(orders)
        report["scales"][orders] = rows[orders]
        for name in args.contenders:
            repeat = args.baseline_repeat if name == "baseline" else args.repeat
            result = run_contender(name, input_dir, repeat)
            report["contenders"].setdefault(name, {})[orders] = result
            print(f"{orders:>7} orders ({rows[orders]:,} rows)  {name:<16} {result}", flush=True)

    per_row = slopes(report["contenders"], rows)
    report["seconds_per_million_rows"] = {k: round(v, 3) for k, v in per_row.items()}
    large = max(rows)
    ratios = {}
    if "floor" in per_row:
        for name in ("project", "project_dagster"):
            if name in per_row:
                ratios[f"{name}/floor slope"] = per_row[name] / per_row["floor"]
                ratios[f"{name}/floor peak memory"] = (
                    report["contenders"][name][large]["peak_mb"]
                    / report["contenders"]["floor"][large]["peak_mb"]
                )
    if "baseline" in per_row:
        for name in ("project", "project_dagster"):
            if name in per_row:
                ratios[f"baseline/{name} slope"] = per_row["baseline"] / per_row[name]
    report["ratios"] = {k: round(v, 2) for k, v in ratios.items()}
    print("seconds per million rows:", report["seconds_per_million_rows"])
    print("ratios:", report["ratios"], flush=True)

    if "fixed" not in args.skip:
        from benchmarks.fixed_cost import measure as fixed

        report["fixed_cost"] = fixed()
        print("fixed cost:", report["fixed_cost"], flush=True)
    if "incremental" not in args.skip:
        from benchmarks.incremental import measure as incremental

        report["incremental"] = incremental(big_rows=args.incremental_rows)
        print("incremental:", report["incremental"], flush=True)
    if "freshness" not in args.skip:
        from benchmarks.freshness import measure as freshness

        report["freshness"] = freshness()
        print("freshness:", report["freshness"], flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
