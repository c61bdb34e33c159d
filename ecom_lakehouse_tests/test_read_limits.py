"""A file cannot take the machine down: one past the read limits (rows, or bytes once
uncompressed) is rejected whole, before it is read, with a reason naming the limit; the other
files of its run load."""

import io
import json
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq

from ecom_lakehouse.core.lake.storage import Lake
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.resources.settings import physical_memory, read_limits
from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse_tests.conftest import archived_files, land, query
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order, xlsx_bytes

# 20,000 identical order lines: a workbook of ~0.2 MB that unzips to several MB
ROWS = 20_000
REPEATED = [ORDERS_HEADER, *([order(1)] * ROWS)]


def unzipped_size(workbook: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(workbook)) as book:
        return sum(entry.file_size for entry in book.infolist())


def test_a_workbook_that_unzips_past_the_limit_is_rejected_before_it_is_read(lake_dir, instance):
    workbook = xlsx_bytes({"2025-04-01": REPEATED})
    assert unzipped_size(workbook) > 4 * len(workbook) > 2**20  # it compresses well
    land(lake_dir, "orders", workbook, "bomb.xlsx")
    land(lake_dir, "orders", csv_bytes([ORDERS_HEADER, order(2)]), "small.csv")
    limit = unzipped_size(workbook) // 2
    defs = build_defs({"LAKEHOUSE_URI": str(lake_dir), "LAKEHOUSE_MAX_FILE_BYTES": str(limit)})
    reports = {r.file_key: r for r in ingest(instance, defs)}
    bomb = reports["orders/bomb.xlsx"]
    assert (bomb.status, bomb.rejection) == ("REJECTED", "too_large")
    assert "uncompressed, past the limit of" in bomb.error
    assert "(LAKEHOUSE_MAX_FILE_BYTES)" in bomb.error and "Spark engine" in bomb.error
    never_read = "SELECT rows_read FROM load_history WHERE file = 'orders/bomb.xlsx'"
    assert query(Lake(str(lake_dir)), never_read) == [(None,)]
    reason = json.loads((lake_dir / "rejected/too_large/orders/bomb.xlsx.reason.json").read_text())
    assert reason["rejection"] == "too_large"
    assert reports["orders/small.csv"].status == "OK"
    assert archived_files(lake_dir) == ["orders/small.csv"]


def test_row_limits_read_a_workbooks_dimensions_and_a_parquet_files_footer(lake_dir, instance):
    land(lake_dir, "orders", xlsx_bytes({"2025-04-01": REPEATED}), "many.xlsx")
    rows = pa.Table.from_pylist([dict(zip(ORDERS_HEADER, order(i), strict=True)) for i in range(3)])
    sink = io.BytesIO()
    pq.write_table(rows, sink)
    land(lake_dir, "orders", sink.getvalue(), "few.parquet")
    defs = build_defs({"LAKEHOUSE_URI": str(lake_dir), "LAKEHOUSE_MAX_FILE_ROWS": "1000"})
    reports = {r.file_key: r for r in ingest(instance, defs)}
    assert reports["orders/many.xlsx"].rejection == "too_large"
    assert (
        f"it holds {ROWS + 1:,} rows, past the limit of 1,000" in reports["orders/many.xlsx"].error
    )
    assert reports["orders/few.parquet"].status == "OK"
    assert query(Lake(str(lake_dir)), "SELECT count(*) FROM orders") == [(3,)]


def test_a_csv_past_the_byte_limit_is_rejected_and_zero_lifts_a_limit(lake_dir, instance):
    data = csv_bytes(REPEATED)
    land(lake_dir, "orders", data, "big.csv")
    tight = {"LAKEHOUSE_URI": str(lake_dir), "LAKEHOUSE_MAX_FILE_BYTES": str(len(data) - 1)}
    (report,) = ingest(instance, build_defs(tight))
    assert report.rejection == "too_large"
    assert read_limits({"LAKEHOUSE_MAX_FILE_BYTES": "0"}).max_bytes is None
    defaults = read_limits({})
    assert defaults.max_bytes == physical_memory() // 8  # sized to the machine
    assert defaults.max_rows == physical_memory() // 256
