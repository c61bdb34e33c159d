"""Shared fixtures: a temporary lake (a real folder), a real Dagster instance, helpers to land
files in raw/ and to query the lake's catalog."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ecom_lakehouse import duckdb_catalog
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.storage import Lake

SHARED_DATA = Path(
    os.environ.get("ECOM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def shared_file(relative: str) -> Path:
    """A real published file, read in place. CI always has them; elsewhere they may be absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must have ../shared/data")
        pytest.skip(f"{path} is not on this machine")
    return path


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    path = tmp_path / "lake"
    path.mkdir()
    return path


@pytest.fixture
def lake(lake_dir: Path) -> Lake:
    return Lake(str(lake_dir))


@pytest.fixture
def defs(lake_dir: Path) -> dg.Definitions:
    return build_defs({"LAKEHOUSE_URI": str(lake_dir)})


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def land(lake_dir: Path, folder: str, source: Path | bytes, name: str | None = None) -> Path:
    """Put a file into raw/<folder>/ as an upload would."""
    target_dir = lake_dir / "raw" / folder
    target_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(source, bytes):
        assert name, "bytes need a file name"
        target = target_dir / name
        target.write_bytes(source)
    else:
        target = target_dir / (name or source.name)
        shutil.copyfile(source, target)
    return target


def query(lake: Lake, sql: str) -> list[tuple]:
    con = duckdb_catalog.open_catalog(lake)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def files_under(lake_dir: Path, zone: str) -> list[str]:
    root = lake_dir / zone
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
