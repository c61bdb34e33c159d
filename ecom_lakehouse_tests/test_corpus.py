"""A corpus of bad and awkward inputs, across the formats, each with its expected fate: loaded
(its rows in the table, found by ``_source_file``), rows rejected with their reason, or the
file rejected whole with its reason. All land together and go through one `ecom-lakehouse
ingest`, as a user would run it; afterwards nothing that belongs to a dataset folder is left
in raw/, and the output has no stack trace."""

import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecom_lakehouse_tests.conftest import Stack, archived_files, files_under, query
from ecom_lakehouse_tests.files import (
    ORDERS_HEADER,
    PRODUCTS_HEADER,
    jsonl_bytes,
    order,
    xlsx_bytes,
)

CLI = str(Path(sys.executable).parent / "ecom-lakehouse")


@dataclass(frozen=True)
class Loaded:
    rows: int  # rows in the table from this file
    rejected: dict[str, int] = field(default_factory=dict)  # reason prefix -> rejected rows


@dataclass(frozen=True)
class Rejected:
    kind: str  # invalid_schema / unreadable
    reason: str  # a part of the reason


@dataclass(frozen=True)
class Stays:
    """Not data of a dataset (a lock file, a file outside every dataset folder)."""


@dataclass(frozen=True)
class Case:
    key: str  # under raw/
    data: bytes
    fate: Loaded | Rejected | Stays


def orders(base: int, n: int = 3, **kw) -> list[list]:
    return [order(base + i, **kw) for i in range(n)]


def text(rows: list[list], delimiter: str = ",", newline: str = "\n") -> str:
    sink = io.StringIO()
    csv.writer(sink, delimiter=delimiter, lineterminator=newline).writerows(rows)
    return sink.getvalue()


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def order_records(base: int, n: int = 3) -> list[dict]:
    return [dict(zip(ORDERS_HEADER, row, strict=True)) for row in orders(base, n)]


GOOD = text([ORDERS_HEADER, *orders(100)])
CASES = [
    # encodings and byte order marks
    Case("orders/bom.csv", b"\xef\xbb\xbf" + text([ORDERS_HEADER, *orders(1000)]).encode(), Loaded(3)),
    Case("orders/utf16.csv", text([ORDERS_HEADER, *orders(2000)], "\t").encode("utf-16"), Loaded(3)),
    Case("orders/latin1.csv", text([ORDERS_HEADER, *orders(3000)]).encode() + "1,3999,7,2025-04-01T10:00:00,1,2025-04-01,caf\xe9\n".encode("latin-1"), Rejected("unreadable", "utf")),
    # delimiters and line endings
    Case("orders/semicolon.csv", text([ORDERS_HEADER, *orders(4000)], ";").encode(), Loaded(3)),
    Case("orders/tabs.csv", text([ORDERS_HEADER, *orders(5000)], "\t").encode(), Loaded(3)),
    Case("orders/pipes.csv", text([ORDERS_HEADER, *orders(6000)], "|").encode(), Loaded(3)),
    Case("orders/crlf.csv", text([ORDERS_HEADER, *orders(7000)], newline="\r\n").encode(), Loaded(3)),
    Case("orders/blank_lines.csv", text([ORDERS_HEADER, *orders(8000)]).replace("\n", "\n\n").encode(), Loaded(3)),
    # titles above headers
    Case("orders/titled.csv", ("Orders export, April 2025\n\n" + text([ORDERS_HEADER, *orders(9000)])).encode(), Loaded(3)),
    Case("orders/titled.xlsx", xlsx_bytes({"2025-04-01": [["Orders export"], [], ORDERS_HEADER, *orders(10000)]}), Loaded(3)),
    # spreadsheets
    Case("orders/formulas.xlsx", xlsx_bytes({"s": [ORDERS_HEADER, *orders(11000, 2), order(11002, amount="=2+3")]}), Loaded(2, {"total_amount: required": 1})),
    Case("orders/blank_and_data_sheets.xlsx", xlsx_bytes({"empty": [], "2025-04-01": [ORDERS_HEADER, *orders(12000)]}), Loaded(3)),
    Case("orders/sheet_with_wrong_header.xlsx", xlsx_bytes({"ok": [ORDERS_HEADER, *orders(13000)], "bad": [["order_id"], [1]]}), Rejected("invalid_schema", "sheet 'bad'")),
    Case("orders/zip_not_workbook.xlsx", b"PK\x03\x04" + b"\x00" * 200, Rejected("unreadable", "xlsx")),
    Case("orders/text_named_xlsx.xlsx", GOOD.encode(), Rejected("unreadable", "xlsx")),
    # huge and odd values
    Case("orders/huge_id.csv", text([ORDERS_HEADER, *orders(14000, 2), order(99999999999999999999999)]).encode(), Loaded(2, {"order_id: not a valid bigint": 1})),
    Case("orders/huge_amount.csv", text([ORDERS_HEADER, *orders(15000, 2), order(15002, amount="1e20")]).encode(), Loaded(2, {"total_amount: not a valid decimal": 1})),
    Case("orders/nan_amount.csv", text([ORDERS_HEADER, *orders(16000, 2), order(16002, amount="NaN")]).encode(), Loaded(2, {"total_amount: not a valid decimal": 1})),
    Case("orders/other_date_format.csv", text([ORDERS_HEADER, *orders(17000, 2), order(17002, ts="01/04/2025 10:00", date="2025-04-01")]).encode(), Loaded(2, {"order_timestamp: not a valid timestamp": 1})),
    Case("orders/utc_offsets.csv", text([ORDERS_HEADER, order(18000, ts="2025-04-01T12:00:00+02:00", date="2025-04-01")]).encode(), Loaded(1)),
    Case("products/long_text.csv", text([PRODUCTS_HEADER, [19000, 1, "D" * 100_000, "P"]]).encode(), Loaded(1)),
    Case("orders/quoted.csv", b'order_num,order_id,user_id,order_timestamp,total_amount,date\n1,20000,7,2025-04-01T10:00:00,"10.5",2025-04-01\n"1","20001","7","2025-04-01T10:00:00","1,5",2025-04-01\n', Loaded(1, {"total_amount: not a valid decimal": 1})),
    Case("orders/ragged.csv", (text([ORDERS_HEADER, *orders(21000, 2)]) + "1,21002,7\n").encode(), Loaded(2, {"malformed row": 1})),
    Case("orders/duplicate_keys.csv", text([ORDERS_HEADER, order(22000, amount=1), order(22000, amount=2)]).encode(), Loaded(1, {"duplicate order_id: order_id 22000 is superseded by row 3": 1})),
    # headers
    Case("orders/header_only.csv", text([ORDERS_HEADER]).encode(), Loaded(0)),
    Case("orders/duplicate_header.csv", text([[*ORDERS_HEADER, "order_id"], [*order(23000), 1]]).encode(), Rejected("invalid_schema", "duplicated columns ['order_id']")),
    Case("orders/missing_column.csv", text([ORDERS_HEADER[:-1], order(24000)[:-1]]).encode(), Rejected("invalid_schema", "missing columns ['date']")),
    Case("orders/extra_columns.csv", text([[*ORDERS_HEADER, "coupon"], [*order(25000), "SPRING"]]).encode(), Loaded(1)),
    Case("orders/case_and_spaces.csv", text([[f" {c.upper()} " for c in ORDERS_HEADER], *orders(26000)]).encode(), Loaded(3)),
    # JSON
    Case("orders/nested.jsonl", jsonl_bytes([{**order_records(27000, 1)[0], "total_amount": {"value": 1}}, *order_records(27001, 2)]), Loaded(2, {"total_amount: not a valid decimal": 1})),
    Case("orders/one_bad_line.jsonl", jsonl_bytes(order_records(28000, 2)) + b"{not json\n", Loaded(2, {"malformed row": 1})),
    Case("orders/array.json", json.dumps(order_records(29000)).encode(), Loaded(3)),
    Case("orders/pretty_object.json", json.dumps(order_records(30000, 1)[0], indent=2).encode(), Loaded(1)),
    Case("orders/broken_array.json", json.dumps(order_records(31000))[:-10].encode(), Rejected("unreadable", "JSON")),
    Case("orders/scalars.json", b"[1, 2, 3]", Rejected("unreadable", "records")),
    Case("orders/mixed_types.jsonl", jsonl_bytes([*order_records(32000, 2), {**order_records(32002, 1)[0], "user_id": "seven"}]), Loaded(2, {"user_id: not a valid bigint": 1})),
    # Parquet
    Case("orders/typed.parquet", parquet(pa.Table.from_pylist(order_records(33000))), Loaded(3)),
    Case("orders/corrupt.parquet", b"PAR1" + os.urandom(300) + b"PAR1", Rejected("unreadable", "parquet")),
    Case("orders/truncated.parquet", parquet(pa.Table.from_pylist(order_records(34000)))[:-40], Rejected("unreadable", "parquet")),
    Case("orders/wrong_schema.parquet", parquet(pa.table({"x": [1]})), Rejected("invalid_schema", "missing columns")),
    # containers, names and places
    Case("orders/empty.csv", b"", Rejected("unreadable", "the file is empty")),
    Case("orders/whitespace.csv", b"  \n\t\n", Rejected("unreadable", "the file is empty")),
    Case("orders/scan.pdf", b"%PDF-1.4 ...", Rejected("unreadable", "unsupported file type")),
    Case("orders/no_suffix", GOOD.encode(), Rejected("unreadable", "unsupported file type")),
    Case("orders/compressed.csv.gz", b"\x1f\x8b\x08\x00", Rejected("unreadable", "unsupported file type")),
    Case("orders/UPPER.CSV", text([ORDERS_HEADER, *orders(35000)]).encode(), Loaded(3)),
    Case("orders/café #1 (copy) 100%+.csv", text([ORDERS_HEADER, *orders(36000)]).encode(), Loaded(3)),
    Case("orders/2025/04/01/nested.csv", text([ORDERS_HEADER, *orders(37000)]).encode(), Loaded(3)),
    Case("orders/~$lock.xlsx", b"lock", Stays()),
    Case("orders/.DS_Store", b"\x00", Stays()),
    Case("customers/not_a_dataset.csv", b"id\n1\n", Stays()),
    Case("loose_in_raw.csv", GOOD.encode(), Stays()),
]  # fmt: skip


def test_the_corpus_has_thirty_inputs_or_more():
    assert len(CASES) >= 30
    assert len({c.key for c in CASES}) == len(CASES)


def rejected_reasons(stack: Stack, case: Case) -> dict[str, int]:
    folder, name = case.key.split("/", 1)
    dataset = {"orders": "orders", "products": "products"}[folder]
    key = f"rejected/records/{dataset}/{name}.parquet"
    if stack.lake.head(key) is None:
        return {}
    reasons = pq.read_table(io.BytesIO(stack.lake.read(key)[0])).column("_reason").to_pylist()
    return {r: reasons.count(r) for r in reasons}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Stack, subprocess.CompletedProcess]:
    from ecom_lakehouse_tests.conftest import local_stack

    stack = local_stack(tmp_path_factory.mktemp("corpus") / "lake")
    for case in CASES:
        stack.lake.write(f"raw/{case.key}", case.data)
    env = {**os.environ, **stack.env}
    env.pop("DAGSTER_HOME", None)
    result = subprocess.run(
        [CLI, "ingest"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    return stack, result


def test_ingest_says_one_line_per_file_and_no_stack_trace(ingested):
    _, result = ingested
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "Stack Trace" not in output, output
    data_files = [c for c in CASES if not isinstance(c.fate, Stays)]
    lines = result.stdout.splitlines()
    assert len([line for line in lines if line.startswith(("OK ", "REJECTED "))]) == len(
        data_files
    ), output
    # files outside every dataset folder are named, and left where they are
    assert [line.split()[1].rstrip(":") for line in lines if line.startswith("LEFT ")] == [
        "raw/customers/not_a_dataset.csv",
        "raw/loose_in_raw.csv",
    ]
    assert result.stderr == ""
    assert not [line for line in lines if line.startswith("FAILED")], output


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_each_input_meets_its_expected_fate(ingested, case):
    stack, _ = ingested
    if isinstance(case.fate, Stays):
        assert stack.lake.head(f"raw/{case.key}") is not None
        return
    assert stack.lake.head(f"raw/{case.key}") is None, "left in raw/"
    if isinstance(case.fate, Rejected):
        key = f"rejected/{case.fate.kind}/{case.key}"
        assert stack.lake.head(key) is not None, files_under(stack.lake, "rejected")
        reason = json.loads(stack.lake.read(key + ".reason.json")[0])["reason"]
        assert case.fate.reason.lower() in reason.lower(), reason
        return
    assert case.key in archived_files(stack.lake)
    table = "products" if case.key.startswith("products/") else "orders"
    escaped = case.key.replace("'", "''")
    ((rows,),) = query(stack, f"SELECT count(*) FROM {table} WHERE _source_file = '{escaped}'")
    assert rows == case.fate.rows
    found = rejected_reasons(stack, case)
    for prefix, count in case.fate.rejected.items():
        assert sum(n for r, n in found.items() if r.startswith(prefix)) == count, found
    assert sum(found.values()) == sum(case.fate.rejected.values()), found
