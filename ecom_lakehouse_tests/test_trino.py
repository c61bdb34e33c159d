"""Trino 476 (the engine Athena engine v3 is built on) reads what the catalog assets register:
every table of the Glue database, on the moto S3 lake, gives the same rows as DuckDB gives; so
do the asset checks' SQL the aws profile sends to Athena, the KPI SQL and the README's queries."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from ecom_lakehouse.contracts import CONTRACTS, KPIS, registered, table_specs
from ecom_lakehouse.core.kpis.refresh import kpi_checks, render_kpi_sql
from ecom_lakehouse.core.sql.checks import render, table_checks
from ecom_lakehouse.generators import transactions
from ecom_lakehouse.resources.sql_engines import AthenaSqlEngine, DuckDbSqlEngine
from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse_tests.conftest import (
    REGION,
    Stack,
    files_under,
    free_port,
    land,
    query,
    s3_stack,
    shared_file,
)
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order
from ecom_lakehouse_tests.jvm import MissingDownload
from ecom_lakehouse_tests.test_worked_example import deliver, example_blocks, family
from ecom_lakehouse_tests.trino_server import Trino, running_trino

README = Path(__file__).resolve().parents[1] / "README.md"
SHARED = {
    "products": "lab5/products.csv",
    "orders": "lab5/orders_apr_2025.xlsx",
    "order_items": "lab5/order_items_apr_2025.xlsx",
    "thelook_products": "thelook/subset_products.csv",
    "thelook_orders": "thelook/subset_orders.csv",
    "thelook_order_items": "thelook/subset_order_items.csv",
}


@pytest.fixture(scope="session")
def lake(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """A moto S3 lake loaded through the real definitions (Glue catalog, KPIs): the lab5 files,
    the TheLook export, a stream of transactions, and a file with a column no contract knows."""
    stack = s3_stack(moto_endpoint)
    for dataset, relative in SHARED.items():
        land(stack.lake, CONTRACTS[dataset].raw_folder, shared_file(relative))
    generated = tmp_path_factory.mktemp("transactions")
    transactions.generate(generated, orders=20, days=2, seed=3)
    for path in sorted(generated.rglob("*.json")):
        stack.lake.write(f"raw/{path.relative_to(generated)}", path.read_bytes())
    rows = [[*ORDERS_HEADER, "coupon"], [*order(99001), "SPRING"], [*order(99002), ""]]
    land(stack.lake, "orders", csv_bytes(rows), "with_coupon.csv")
    with dg.instance_for_test() as instance:
        reports = ingest(instance, stack.defs)
    assert reports and all(r.success for r in reports), [r.summary() for r in reports]
    assert files_under(stack.lake, "raw") == []
    return stack


@pytest.fixture(scope="session")
def trino(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trino]:
    try:
        with running_trino(
            moto_endpoint, REGION, tmp_path_factory.mktemp("trino"), free_port
        ) as server:
            yield server
    except MissingDownload as missing:
        pytest.fail(str(missing))


def database(stack: Stack) -> str:
    return stack.env["LAKEHOUSE_GLUE_DATABASE"]


def normal(row: tuple) -> tuple:
    """Values as both engines can give them. Trino reads Delta timestamps to the millisecond
    (rounded); ``avg`` of a decimal is a decimal in Trino (Athena), a double in DuckDB."""

    def value(v: object) -> object:
        if isinstance(v, datetime):
            v = v.astimezone(UTC)
            return v.replace(microsecond=0) + timedelta(milliseconds=(v.microsecond + 500) // 1000)
        if isinstance(v, Decimal | float):
            return round(float(v), 6)
        return v

    return tuple(value(v) for v in row)


def same_rows(left: list[tuple], right: list[tuple]) -> bool:
    key = repr
    return sorted(map(normal, left), key=key) == sorted(map(normal, right), key=key)


def glue_tables(stack: Stack) -> list[str]:
    pages = stack.client("glue").get_paginator("get_tables").paginate(DatabaseName=database(stack))
    return sorted(t["Name"] for page in pages for t in page["TableList"])


def test_trino_reads_every_table_the_catalog_registers(lake, trino):
    registered = glue_tables(lake)
    assert registered == sorted(spec.name for spec in table_specs()), registered
    specs = {spec.name: spec for spec in table_specs()}
    for name in registered:
        columns = trino.rows(f'SHOW COLUMNS FROM "{name}"', database(lake))
        assert [c[0] for c in columns] == [c.name for c in specs[name].table_columns], name
        on_trino = trino.rows(f'SELECT * FROM "{name}"', database(lake))
        on_duckdb = query(lake, f'SELECT * FROM "{name}"')
        assert on_duckdb, f"{name} is empty: the comparison would prove nothing"
        assert same_rows(on_trino, on_duckdb), name
    rescued = trino.rows(
        "SELECT order_id, json_extract_scalar(_rescued_data, '$.coupon') FROM orders"
        " WHERE order_id > 99000",
        database(lake),
    )
    assert sorted(rescued) == [(99001, "SPRING"), (99002, None)]


def test_the_checks_sql_sent_to_athena_gives_duckdbs_results_on_trino(lake, trino):
    athena = AthenaSqlEngine(database=database(lake))
    duckdb = DuckDbSqlEngine()
    for contract in CONTRACTS.values():
        rows = query(lake, f"SELECT count(*) FROM {contract.name}")[0][0]
        for check in table_checks(contract):
            sql = render(check, lambda ds: athena.table_ref(lake.lake, ds), rows)
            (on_trino,) = trino.rows(sql, database(lake))
            local = render(check, lambda ds: duckdb.table_ref(lake.lake, ds), rows)
            assert on_trino[0] == duckdb.scalar(lake.lake, local), (contract.name, check.name)


def kpi_sql(kpi, sql: str, table_ref, dates) -> str:
    return render_kpi_sql(sql, lambda name: table_ref(kpi.name if name == "kpi" else name), dates)


def test_the_kpi_sql_gives_the_same_rows_on_trino(lake, trino):
    athena = AthenaSqlEngine(database=database(lake))
    duckdb = DuckDbSqlEngine()
    on_athena = lambda name: athena.table_ref(lake.lake, name)  # noqa: E731
    on_duckdb = lambda name: duckdb.table_ref(lake.lake, name)  # noqa: E731
    for kpi in KPIS.values():
        dates = sorted(r[0] for r in query(lake, kpi_sql(kpi, kpi.dates, on_duckdb, None)))
        assert dates, kpi.name
        on_trino = trino.rows(kpi_sql(kpi, kpi.sql, on_athena, dates), database(lake))
        local = query(lake, kpi_sql(kpi, kpi.sql, on_duckdb, dates))
        assert on_trino and same_rows(on_trino, local), kpi.name
        for check in kpi_checks(kpi):
            (found,) = trino.rows(kpi_sql(kpi, check.sql, on_athena, dates), database(lake))
            assert found == query(lake, kpi_sql(kpi, check.sql, on_duckdb, dates))[0], check.name


def readme_queries() -> list[str]:
    found = re.findall(r'ecom-lakehouse query "([^"]+)"', README.read_text())
    return [" ".join(q.split()) for q in found if q != "SQL"]


def test_the_readmes_queries_give_the_same_results_on_trino(lake, trino):
    registered = set(glue_tables(lake))
    ran = 0
    for sql in readme_queries():
        tables = set(re.findall(r"\bFROM (\w+)", sql))
        if not tables <= registered:  # rejected_<dataset>: a DuckDB view of Parquet files
            continue
        on_trino, local = trino.rows(sql, database(lake)), query(lake, sql)
        if "LIMIT" in sql and "ORDER BY" not in sql:  # any rows: only the count is defined
            assert len(on_trino) == len(local), sql
        else:
            assert same_rows(on_trino, local), sql
        ran += 1
    assert ran >= 5


def test_trino_reads_a_composite_key_familys_glue_entries_and_runs_its_checks(moto_endpoint, trino):
    """docs/datasets.md's worked example (not a shipped family) on S3: its Glue entries read
    by Trino give DuckDB's rows, and the composite key's checks give DuckDB's results."""
    stack = s3_stack(moto_endpoint)
    datasets = family()
    with registered(datasets):
        *first, _ = example_blocks("file")
        for path, content in first:
            deliver(stack, path, content)
        with dg.instance_for_test() as instance:
            assert all(r.success for r in ingest(instance, stack.defs))
        athena, duckdb = AthenaSqlEngine(database=database(stack)), DuckDbSqlEngine()
        for contract in datasets:
            description = stack.client("glue").get_table(
                DatabaseName=database(stack), Name=contract.name
            )["Table"]["Description"]
            assert description.endswith(f"Primary key: {contract.key_label}.")
            on_trino = trino.rows(f'SELECT * FROM "{contract.name}"', database(stack))
            assert on_trino and same_rows(on_trino, query(stack, f"SELECT * FROM {contract.name}"))
            rows = len(on_trino)
            for check in table_checks(contract):
                sql = render(check, lambda ds: athena.table_ref(stack.lake, ds), rows)
                local = render(check, lambda ds: duckdb.table_ref(stack.lake, ds), rows)
                (result,) = trino.rows(sql, database(stack))
                assert result[0] == duckdb.scalar(stack.lake, local) == 0, check.name
