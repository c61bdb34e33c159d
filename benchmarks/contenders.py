"""The ways of loading the same files that the benchmark compares, each run in its own process
(``python -m benchmarks.contenders NAME INPUT_DIR WORK_DIR``) so its peak memory is its own.

Prints one JSON line: rows loaded and the seconds the load took (after imports).
"""

import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ecom_lakehouse.contracts import CONTRACTS


def input_files(input_dir: Path) -> dict[str, Path]:
    """dataset -> its one generated file (the generator's layout is the raw/ layout)."""
    return {name: next((input_dir / c.raw_folder).iterdir()) for name, c in CONTRACTS.items()}


def floor(input_dir: Path, work_dir: Path) -> int:
    """Read every sheet with the fastest reader straight into Arrow; write each table once."""
    import fastexcel
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from deltalake import write_deltalake

    rows = 0
    for name, path in input_files(input_dir).items():
        if path.suffix == ".csv":
            table = pacsv.read_csv(path)
        else:
            reader = fastexcel.read_excel(path)
            # sheets infer their own types (an all-empty column is null): promote to one schema
            table = pa.concat_tables(
                [pa.table(reader.load_sheet(s).to_arrow()) for s in reader.sheet_names],
                promote_options="permissive",
            )
        write_deltalake(str(work_dir / name), table)
        rows += table.num_rows
    return rows


def baseline(input_dir: Path, work_dir: Path) -> int:
    """As the seed projects did it: pandas + openpyxl over all sheets, drop null keys, drop
    duplicate keys, Delta merge with deltalake."""
    import pandas as pd
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    rows = 0
    for name, path in input_files(input_dir).items():
        contract = CONTRACTS[name]
        if path.suffix == ".csv":
            frame = pd.read_csv(path)
        else:
            sheets = pd.read_excel(path, sheet_name=None, engine="openpyxl")
            frame = pd.concat(sheets.values(), ignore_index=True)
        key = contract.primary_key
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


def _lake_with_raw(input_dir: Path, work_dir: Path) -> Path:
    lake = work_dir / "lake"
    shutil.copytree(input_dir, lake / "raw")
    return lake


def project_in_process(input_dir: Path, work_dir: Path) -> int:
    """This project's real code path without Dagster: validate (rejects), merge, checks,
    archive, catalog."""
    from ecom_lakehouse import layout
    from ecom_lakehouse.assets import run_table_checks
    from ecom_lakehouse.catalog import CatalogResource
    from ecom_lakehouse.checks import table_checks
    from ecom_lakehouse.delta import table_row_count
    from ecom_lakehouse.pipeline import archive_file, load_file, validate_file
    from ecom_lakehouse.sql_engines import SqlEngineResource
    from ecom_lakehouse.storage import Lake

    lake = Lake(str(_lake_with_raw(input_dir, work_dir)))
    sql, catalog = SqlEngineResource(), CatalogResource()
    rows = 0
    for name, path in input_files(input_dir).items():
        contract = CONTRACTS[name]
        file_key = f"{contract.raw_folder}/{path.name}"
        validated = validate_file(lake, contract, file_key)
        uri = lake.url(layout.table_path(name))
        before = table_row_count(uri, lake.storage_options()) or 0
        loaded = load_file(lake, contract, file_key)
        results = run_table_checks(
            lake, sql, table_checks(contract), before + loaded.outcome.inserted
        )
        assert all(r.passed for r in results[:2]), results
        archive_file(lake, file_key, validated.source.etag)
        catalog.register(lake, contract)
        rows += loaded.outcome.loaded
    return rows


def project_dagster(input_dir: Path, work_dir: Path) -> int:
    """The same, as Dagster runs: `ecom-lakehouse ingest` in process."""
    import dagster as dg

    from ecom_lakehouse.definitions import build_defs
    from ecom_lakehouse.runner import ingest

    lake = _lake_with_raw(input_dir, work_dir)
    with dg.DagsterInstance.ephemeral() as instance:
        reports = ingest(instance, build_defs({"LAKEHOUSE_URI": str(lake)}))
    assert all(r.success for r in reports), [r.error for r in reports]
    return sum(
        int(r.metadata[r.dataset]["rows_inserted"]) + int(r.metadata[r.dataset]["rows_updated"])
        for r in reports
    )


CONTENDERS: dict[str, Callable[[Path, Path], int]] = {
    "floor": floor,
    "baseline": baseline,
    "project": project_in_process,
    "project_dagster": project_dagster,
}

if __name__ == "__main__":
    name, input_dir, work_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    started = time.perf_counter()
    loaded = CONTENDERS[name](input_dir, work_dir)
    print(json.dumps({"rows": loaded, "seconds": time.perf_counter() - started}))
