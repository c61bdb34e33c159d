"""The command-line interface as a user runs it: a separate process, real files."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core.read.readers import read_parts
from ecom_lakehouse_tests.conftest import land

CLI = str(Path(sys.executable).parent / "ecom-lakehouse")
CONTRACTS_BY_FOLDER = {c.raw_folder: c.name for c in CONTRACTS.values()}


def cli(
    lake_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, "LAKEHOUSE_URI": str(lake_dir), **(env or {})}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_generate_ingest_and_query(lake_dir, tmp_path):
    generated = cli(lake_dir, "generate", str(lake_dir / "raw"), "--orders", "120", "--seed", "4")
    assert generated.returncode == 0, generated.stderr
    ingested = cli(lake_dir, "ingest")
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    assert ingested.stdout.count("\nOK ") == 3
    assert "3 file(s) loaded, 0 rejected, 0 failed" in ingested.stdout
    result = cli(lake_dir, "query", "SELECT count(*) AS n FROM orders", "--format", "csv")
    assert (result.returncode, result.stdout) == (0, "n\n120\n")
    table = cli(lake_dir, "query", "SELECT count(*) AS n FROM products")
    assert "1000" in table.stdout
    nothing = cli(lake_dir, "ingest")
    assert (nothing.returncode, nothing.stdout.splitlines()[-1]) == (
        0,
        "nothing to do: raw/ has no files to process",
    )


@pytest.mark.parametrize("family", ["ecommerce", "thelook"])
def test_generate_is_repeatable_by_seed(tmp_path, family):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        args = ("generate", str(out), "--orders", "40", "--seed", "9", "--family", family)
        assert cli(tmp_path, *args).returncode == 0
    folders = sorted(p.name for p in a.iterdir())
    assert folders == sorted(p.name for p in b.iterdir())
    assert {CONTRACTS_BY_FOLDER[f] for f in folders} <= set(CONTRACTS)
    for folder in folders:
        (file_a,) = (a / folder).iterdir()
        (file_b,) = (b / folder).iterdir()
        parts_a = read_parts(file_a.read_bytes(), file_a.suffix[1:])
        parts_b = read_parts(file_b.read_bytes(), file_b.suffix[1:])
        assert [p.table for p in parts_a] == [p.table for p in parts_b], folder
    if family == "thelook":
        return
    sheets = read_parts((a / "orders").glob("*.xlsx").__next__().read_bytes(), "xlsx")
    assert len(sheets) == 15  # one sheet per day


def test_a_failed_file_makes_ingest_exit_non_zero_with_a_summary(lake_dir):
    land(lake_dir, "orders", b"order_id,amount\n1,2\n", "wrong.csv")
    result = cli(lake_dir, "ingest")
    assert result.returncode == 1
    assert "REJECTED orders/wrong.csv (invalid_schema): header does not match" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("query", "SELECT 1"), "no catalog at"),
        (("generate", "x", "--orders", "0"), "Invalid value for '--orders'"),
        (("nonsense",), "No such command"),
    ],
)
def test_bad_input_gets_a_clear_error_not_a_traceback(lake_dir, args, message):
    result = cli(lake_dir, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAKEHOUSE_ENV": "staging"}, "LAKEHOUSE_ENV='staging': expected one of ['aws', 'local']"),
        (
            {"LAKEHOUSE_URI": "s3://no-such-bucket", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
            "Error",
        ),
    ],
)
def test_a_bad_environment_gets_one_clear_line(lake_dir, env, message):
    result = cli(lake_dir, "ingest", env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_sql_gets_a_clear_error(lake_dir):
    land(
        lake_dir,
        "orders",
        b"order_num,order_id,user_id,order_timestamp,total_amount,date\n",
        "e.csv",
    )
    assert cli(lake_dir, "ingest").returncode == 0
    result = cli(lake_dir, "query", "SELECT nope FROM orders")
    assert result.returncode == 1
    assert 'Referenced column "nope" not found' in result.stderr
    assert "Traceback" not in result.stderr
