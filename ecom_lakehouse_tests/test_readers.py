import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecom_lakehouse.core.read.readers import UnreadableFile, detect_format, read_parts
from ecom_lakehouse_tests.conftest import shared_file
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, jsonl_bytes, order, xlsx_bytes


def rows(part) -> list[list]:
    n = len(part.header)
    return [[r[f"c{i}"] for i in range(n)] for r in part.table.to_pylist()]


def test_format_is_detected_from_the_suffix():
    assert detect_format("orders/A.XLSX") == "xlsx"
    assert detect_format("orders/a.csv") == "csv"
    assert detect_format("orders/a.ndjson") == "jsonl"
    assert detect_format("orders/a.pdf") is None


def test_xlsx_reads_every_sheet_in_workbook_order_with_the_cells_types():
    data = xlsx_bytes(
        {
            "2025-04-02": [ORDERS_HEADER, order(2, "2025-04-02T09:00:00", 12)],
            "2025-04-01": [ORDERS_HEADER, order(1, amount=10.25), order(3, amount=7)],
        }
    )
    parts = read_parts(data, "xlsx")
    assert [p.sheet for p in parts] == ["2025-04-02", "2025-04-01"]
    assert parts[0].header == ORDERS_HEADER
    # numbers stay numbers (validation types them), text timestamps stay text
    assert rows(parts[1]) == [
        [1, 1, 7, "2025-04-01T10:00:00", 10.25, "2025-04-01"],
        [1, 3, 7, "2025-04-01T10:00:00", 7, "2025-04-01"],
    ]
    assert parts[1].table.column("_source_row").to_pylist() == [2, 3]


def test_blank_sheets_are_skipped_but_a_workbook_of_blank_sheets_is_unreadable():
    data = xlsx_bytes({"notes": [], "day": [ORDERS_HEADER, order(1)]})
    assert [p.sheet for p in read_parts(data, "xlsx")] == ["day"]
    with pytest.raises(UnreadableFile, match="no sheet with data"):
        read_parts(xlsx_bytes({"a": [], "b": []}), "xlsx")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"PK\x03\x04 this is not really a zip", "not a readable xlsx"),
        (b"order_id,date\n1,2025-04-01\n", "not a readable xlsx"),
    ],
)
def test_unreadable_workbooks_say_why(data, message):
    with pytest.raises(UnreadableFile, match=message):
        read_parts(data, "xlsx")


def test_a_truncated_workbook_is_unreadable():
    data = xlsx_bytes({"day": [ORDERS_HEADER, order(1)]})
    with pytest.raises(UnreadableFile):
        read_parts(data[: len(data) // 2], "xlsx")


def test_csv_keeps_text_and_handles_a_byte_order_mark():
    data = b"\xef\xbb\xbf" + csv_bytes([ORDERS_HEADER, order(1, amount="010.50")])
    (part,) = read_parts(data, "csv")
    assert part.header == ORDERS_HEADER
    assert rows(part) == [["1", "1", "7", "2025-04-01T10:00:00", "010.50", "2025-04-01"]]


def test_csv_rows_with_the_wrong_number_of_fields_are_reported_with_their_line():
    data = csv_bytes([ORDERS_HEADER, order(1), order(2)[:4], [*order(3), "extra"], order(4)])
    (part,) = read_parts(data, "csv")
    assert [r[1] for r in rows(part)] == ["1", "4"]
    assert part.table.column("_source_row").to_pylist() == [2, 5]
    assert [line for line, _ in part.malformed] == [3, 4]
    assert "expected 6 fields, got 4" in part.malformed[0][1]


def test_csv_that_is_not_utf8_is_unreadable():
    with pytest.raises(UnreadableFile):
        read_parts("order_id\n\u00e9\n".encode("latin-1"), "csv")


def test_jsonl_keeps_scalars_and_writes_nested_values_as_json_text():
    records = [{"order_id": 1, "total_amount": 10.5, "tags": ["a"]}, {"order_id": 2}]
    (part,) = read_parts(jsonl_bytes(records), "jsonl")
    assert part.header == ["order_id", "total_amount", "tags"]
    assert rows(part) == [[1, 10.5, '["a"]'], [2, None, None]]
    (array_part,) = read_parts(b'[{"order_id": 1}]', "jsonl")
    assert rows(array_part) == [[1]]
    with pytest.raises(UnreadableFile):
        read_parts(b"{not json", "jsonl")


def test_parquet_keeps_its_types():
    sink = io.BytesIO()
    pq.write_table(pa.table({"order_id": [1, 2], "total_amount": [1.5, 2.0]}), sink)
    (part,) = read_parts(sink.getvalue(), "parquet")
    assert rows(part) == [[1, 1.5], [2, 2.0]]
    assert part.table.column("c0").type == pa.int64()


def test_real_workbook_with_foreign_zip_entries_reads_all_fifteen_sheets():
    parts = read_parts(shared_file("lab5/orders_apr_2025.xlsx").read_bytes(), "xlsx")
    assert len(parts) == 15
    assert sum(p.table.num_rows for p in parts) == 7500


def test_a_column_mixing_numbers_and_text_keeps_every_value_as_text():
    sheet = [["order_id"], *([i] for i in range(1500)), ["abc"], [None], [7.25]]
    (part,) = read_parts(xlsx_bytes({"s": sheet}), "xlsx")
    assert [r[0] for r in rows(part)[-4:]] == ["1499", "abc", None, "7.25"]


def test_real_excel_dates_are_read_as_timestamps():
    from datetime import datetime

    data = xlsx_bytes({"s": [["ts"], [datetime(2025, 4, 1, 11, 27)]]})
    (part,) = read_parts(data, "xlsx")
    assert rows(part)[0][0] == datetime(2025, 4, 1, 11, 27)


def _parquet_bytes() -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"order_id": [1, 2], "total_amount": [1.5, None]}), sink)
    return sink.getvalue()


@pytest.mark.parametrize(
    ("fmt", "data"),
    [
        ("csv", csv_bytes([ORDERS_HEADER, order(1), order(2)[:4], order(3)])),
        ("xlsx", xlsx_bytes({"a": [ORDERS_HEADER, order(1)], "b": [ORDERS_HEADER, order(2)]})),
        ("jsonl", jsonl_bytes([{"order_id": 1, "tags": ["a"]}, {"order_id": 2}])),
        ("jsonl", b'[{"order_id": 1}, {"order_id": 2}]'),
        ("parquet", _parquet_bytes()),
    ],
)
def test_a_downloaded_file_reads_as_its_bytes_do(tmp_path, fmt, data):
    path = tmp_path / f"landed.{fmt}"
    path.write_bytes(data)
    from_file, from_bytes = read_parts(path, fmt), read_parts(data, fmt)
    assert [(p.sheet, p.header, p.malformed) for p in from_file] == [
        (p.sheet, p.header, p.malformed) for p in from_bytes
    ]
    assert [p.table for p in from_file] == [p.table for p in from_bytes]


@pytest.mark.parametrize("data", [b"", b" \n\t\n"])
def test_an_empty_downloaded_file_is_unreadable(tmp_path, data):
    path = tmp_path / "landed.csv"
    path.write_bytes(data)
    with pytest.raises(UnreadableFile, match="empty"):
        read_parts(path, "csv")
