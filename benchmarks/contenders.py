"""The ways of loading the same files that the benchmark compares, each run in its own process
(``python -m benchmarks.contenders NAME INPUT_DIR WORK_DIR``) so its peak memory is its own.

Each contender imports what it needs and prepares its working folder, then returns the load
itself, which alone is timed. Prints one JSON line: rows loaded and the seconds the load took.
"""

import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ecom_lakehouse.contracts import CONTRACTS, table_specs

Load = Callable[[], int]


def input_files(input_dir: Path) -> dict[str, Path]:
    """dataset -> its one generated file (the generator's layout is the raw/ layout), for the
    datasets the inputs have (the seed family's), in load order."""
    folders = {name: input_dir / c.raw_folder for name, c in CONTRACTS.items()}
    return {name: next(folder.iterdir()) for name, folder in folders.items() if folder.is_dir()}


def floor(input_dir: Path, work_dir: Path) -> Load:
    """Read every file with the fastest reader for its format straight into Arrow (every
    sheet of a workbook); write each table once."""
    import fastexcel
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson
    import pyarrow.parquet as pq
    from deltalake import write_deltalake

    readers = {".csv": pacsv.read_csv, ".jsonl": pajson.read_json, ".parquet": pq.read_table}

    def load() -> int:
        rows = 0
        for name, path in input_files(input_dir).items():
            if path.suffix in readers:
                table = readers[path.suffix](path)
            else:
                reader = fastexcel.read_excel(path)
                # each sheet infers its own types (an all-empty column is null): promote
                table = pa.concat_tables(
                    [pa.table(reader.load_sheet(s).to_arrow()) for s in reader.sheet_names],
                    promote_options="permissive",
                )
            write_deltalake(str(work_dir / name), table)
            rows += table.num_rows
        return rows

    return load


def baseline(input_dir: Path, work_dir: Path) -> Load:
    """As the seed projects did it: pandas + openpyxl over all sheets, drop null keys, drop
    duplicate keys, Delta merge with deltalake."""
    import pandas as pd
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    def load() -> int:
        rows = 0
        for name, path in input_files(input_dir).items():
            key = CONTRACTS[name].primary_key
            if path.suffix == ".csv":
                frame = pd.read_csv(path)
            else:
                sheets = pd.read_excel(path, sheet_name=None, engine="openpyxl")
                frame = pd.concat(sheets.values(), ignore_index=True)
            frame = frame.dropna(subset=[key]).drop_duplicates(subset=[key], keep="last")
            table = pa.Table.from_pandas(frame, preserve_index=False)
            uri = str(work_dir / name)
            write_deltalake(uri, table.schema.empty_table())
            (
                DeltaTable(uri)
                .merge(table, predicate=f"t.{key} = s.{key}", source_alias="s", target_alias="t")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
            rows += len(frame)
        return rows

    return load


def _lake_with_raw(input_dir: Path, work_dir: Path) -> Path:
    lake = work_dir / "lake"
    shutil.copytree(input_dir, lake / "raw")
    return lake


def project_in_process(input_dir: Path, work_dir: Path) -> Load:
    """This project's real code path without Dagster: validate (rejects), merge, checks,
    archive, catalog."""
    from ecom_lakehouse.core.lake import layout
    from ecom_lakehouse.core.lake.memory import release_freed_memory
    from ecom_lakehouse.core.lake.storage import Lake
    from ecom_lakehouse.core.pipeline import archive_batch, load_batch, validate_batch
    from ecom_lakehouse.core.sql import duckdb_sql
    from ecom_lakehouse.core.sql.checks import evaluate_checks, table_checks
    from ecom_lakehouse.core.tables.delta import table_row_count
    from ecom_lakehouse.resources.catalogs import DuckDbCatalog

    lake = Lake(str(_lake_with_raw(input_dir, work_dir)))
    catalog = DuckDbCatalog()

    def scalar(query: str) -> int:
        return duckdb_sql.scalar(lake, query)

    def table_ref(dataset: str) -> str:
        return duckdb_sql.delta_scan(lake, dataset)

    def load() -> int:
        rows = 0
        for name, path in input_files(input_dir).items():
            contract = CONTRACTS[name]
            file_key = f"{contract.raw_folder}/{path.name}"
            # as the Dagster steps do: each step reads what the previous one wrote
            validate_batch(lake, contract, [file_key], name)
            uri = lake.url(layout.table_path(name))
            before = table_row_count(uri, lake.storage_options()) or 0
            loaded = load_batch(lake, contract, name)
            release_freed_memory()  # as the merge engine does before the checks
            expected = before + loaded.outcome.inserted
            results = evaluate_checks(table_checks(contract), scalar, table_ref, expected)
            assert all(r.passed for r in results[:2]), results
            archive_batch(lake, contract, name)
            catalog.register(lake, contract, table_specs())
            rows += loaded.outcome.loaded
        return rows

    return load


def project_dagster(input_dir: Path, work_dir: Path) -> Load:
    """The same, as Dagster runs: `ecom-lakehouse ingest` in process."""
    import dagster as dg

    from ecom_lakehouse.definitions import build_defs
    from ecom_lakehouse.runner.ingest import ingest

    defs = build_defs({"LAKEHOUSE_URI": str(_lake_with_raw(input_dir, work_dir))})

    def load() -> int:
        with dg.DagsterInstance.ephemeral() as instance:
            reports = ingest(instance, defs)
        assert all(r.success for r in reports), [r.error for r in reports]
        tables = [r.metadata[r.dataset] for r in reports]
        return sum(int(str(t["rows_inserted"])) + int(str(t["rows_updated"])) for t in tables)

    return load


def project_spark(input_dir: Path, work_dir: Path) -> Load:
    """Validation as the asset does, then the Spark job's Delta MERGE (Spark 3.5.4, Delta 3.3.0
    from the tests' jar cache, local[2]) in place of delta-rs. The session starts before the
    clock (on Glue it is the job's start-up, not the load's)."""
    from pyspark.sql import SparkSession

    from ecom_lakehouse.core.lake import layout
    from ecom_lakehouse.core.lake.storage import Lake
    from ecom_lakehouse.core.pipeline import validate_batch
    from ecom_lakehouse.spark.batch import prepare, read_uploads, read_validated
    from ecom_lakehouse.spark.job import TABLES
    from ecom_lakehouse_tests.jvm import spark_confs

    lake = Lake(str(_lake_with_raw(input_dir, work_dir)))
    builder = SparkSession.builder.master("local[2]").appName("benchmark")
    for key, value in spark_confs(work_dir / "warehouse").items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    tables = TABLES["spark"](spark, lake.uri)

    def load() -> int:
        rows = 0
        for name, path in input_files(input_dir).items():
            contract = CONTRACTS[name]
            validate_batch(lake, contract, [f"{contract.raw_folder}/{path.name}"], name)
            batch = read_validated(spark, lake.url(layout.validated_batch_key(name, name)))
            uploads = read_uploads(spark, lake.url(layout.batch_manifest_key(name, name)))
            rows += tables.merge(contract, prepare(batch, contract), uploads).loaded
        return rows

    return load


CONTENDERS: dict[str, Callable[[Path, Path], Load]] = {
    "floor": floor,
    "baseline": baseline,
    "project": project_in_process,
    "project_dagster": project_dagster,
    "project_spark": project_spark,
}

if __name__ == "__main__":
    name, input_dir, work_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    load = CONTENDERS[name](input_dir, work_dir)
    started = time.perf_counter()
    loaded = load()
    print(json.dumps({"rows": loaded, "seconds": time.perf_counter() - started}))
