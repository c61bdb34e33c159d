"""The benchmark suite: `python -m benchmarks.run` (see the README's Performance section).

Generates inputs at two scales with the project's generator, loads the same files with each
contender in its own process (wall time, rows/s, peak memory), and reports the per-row cost (the
slope between the scales) as ratios against the floor and the naive baseline, measured in the
same run; then freshness under the daemon, the incremental merge cost, the fixed cost, and the
throughput of a stream of small files (``benchmarks/stream.py``).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ecom_lakehouse.generators.ecommerce import generate

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


def best_of(runs: list[dict]) -> dict:
    """The fastest run (noise on a shared machine only ever adds time) with the median's
    seconds beside it; peak memory as the median over the runs, and the largest seen."""
    by_time = sorted(runs, key=lambda r: r["seconds"])
    peaks = sorted(r["peak_mb"] for r in runs)
    return by_time[0] | {
        "median_seconds": by_time[len(by_time) // 2]["seconds"],
        "runs": len(runs),
        "peak_mb": peaks[len(peaks) // 2],
        "max_peak_mb": peaks[-1],
    }


def settle() -> None:
    """Flush what earlier measurements wrote (hundreds of MB of Delta files), so its writeback
    does not fall on the next measurement's clock."""
    os.sync()


def _run_once(name: str, input_dir: Path) -> dict:
    settle()
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


def measure_contenders(
    scales: list[int], contenders: list[str], repeat: int, baseline_repeat: int
) -> tuple[dict[int, int], dict[str, dict[int, dict]]]:
    """Every contender at every scale; the report's ``scales`` and ``contenders`` sections."""
    rows: dict[int, int] = {}
    input_dirs: dict[int, Path] = {}
    for orders in scales:
        input_dirs[orders], rows[orders] = inputs(orders)
    # Rounds interleave every contender and scale, so a slow spell on the machine falls on all
    # of them rather than on one.
    runs: dict[str, dict[int, list[dict]]] = {}
    for round_ in range(repeat):
        for orders in scales:
            for name in contenders:
                if name == "baseline" and round_ >= baseline_repeat:
                    continue
                result = _run_once(name, input_dirs[orders])
                runs.setdefault(name, {}).setdefault(orders, []).append(result)
                label = f"{orders:>7} orders ({rows[orders]:,} rows)  {name:<16}"
                print(label, result, flush=True)
    best = {name: {o: best_of(r) for o, r in by_scale.items()} for name, by_scale in runs.items()}
    return rows, best


def ratios(
    per_row: dict[str, float], contenders: dict[str, dict[int, dict]], large: int
) -> dict[str, float]:
    """The targets' ratios: this project against the floor (slope, peak memory at the large
    scale) and the naive baseline against this project (slope)."""
    found = {}
    for name in ("project", "project_dagster"):
        if name not in per_row:
            continue
        if "floor" in per_row:
            found[f"{name}/floor slope"] = per_row[name] / per_row["floor"]
            for peak in ("peak_mb", "max_peak_mb"):
                found[f"{name}/floor {peak}"] = (
                    contenders[name][large][peak] / contenders["floor"][large][peak]
                )
        if "baseline" in per_row:
            found[f"baseline/{name} slope"] = per_row["baseline"] / per_row[name]
    return {k: round(v, 2) for k, v in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=int, nargs=2, default=[20_000, 100_000], metavar="ORDERS")
    parser.add_argument(
        "--contenders", nargs="+", default=["floor", "baseline", "project", "project_dagster"]
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs per contender and scale (the fastest counts)"
    )
    parser.add_argument(
        "--baseline-repeat", type=int, default=1, help="the slow naive baseline: fewer runs"
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["spark", "formats", "freshness", "incremental", "fixed", "stream"],
    )
    parser.add_argument("--stream-files", type=int, default=1000)
    parser.add_argument("--incremental-rows", type=int, default=5_000_000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args()

    rows, contenders = measure_contenders(
        args.scales, args.contenders, args.repeat, args.baseline_repeat
    )
    per_row = slopes(contenders, rows)
    report: dict = {
        "scales": rows,
        "contenders": contenders,
        "seconds_per_million_rows": {k: round(v, 3) for k, v in per_row.items()},
        "ratios": ratios(per_row, contenders, max(rows)),
    }
    print("seconds per million rows:", report["seconds_per_million_rows"])
    print("ratios:", report["ratios"], flush=True)

    if "spark" not in args.skip:
        # for information: the Spark engine's MERGE on the smallest input, beside delta-rs's
        small = min(args.scales)
        spark = [_run_once("project_spark", inputs(small)[0]) for _ in range(2)]
        report["spark"] = {
            "orders": small,
            "spark": best_of(spark),
            "delta_rs": contenders.get("project", {}).get(small),
        }
        print("spark engine:", report["spark"], flush=True)

    if "formats" not in args.skip:
        from benchmarks.formats import measure as formats

        report["formats"] = formats()
    if "fixed" not in args.skip:
        from benchmarks.fixed_cost import measure as fixed

        settle()
        report["fixed_cost"] = fixed()
        print("fixed cost:", report["fixed_cost"], flush=True)
    if "incremental" not in args.skip:
        from benchmarks.incremental import measure as incremental

        settle()
        report["incremental"] = incremental(big_rows=args.incremental_rows)
        print("incremental:", report["incremental"], flush=True)
    if "freshness" not in args.skip:
        from benchmarks.freshness import measure as freshness

        settle()
        report["freshness"] = freshness()
        print("freshness:", report["freshness"], flush=True)

    if "stream" not in args.skip:
        from benchmarks.stream import measure as stream

        settle()
        report["stream"] = stream(files=args.stream_files)
        print("stream:", report["stream"], flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
