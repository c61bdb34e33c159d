"""Small input files made in the tests (the real published files are read in place)."""

import csv
import io
import json
from collections.abc import Sequence

from openpyxl import Workbook

from ecom_lakehouse.contracts import CONTRACTS

ORDERS_HEADER = list(CONTRACTS["orders"].column_names)
ITEMS_HEADER = list(CONTRACTS["order_items"].column_names)
PRODUCTS_HEADER = list(CONTRACTS["products"].column_names)


def xlsx_bytes(sheets: dict[str, Sequence[Sequence[object]]]) -> bytes:
    """A workbook with one sheet per entry; rows include the header row."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    sink = io.BytesIO()
    workbook.save(sink)
    return sink.getvalue()


def csv_bytes(rows: Sequence[Sequence[object]]) -> bytes:
    sink = io.StringIO()
    csv.writer(sink, lineterminator="\n").writerows(rows)
    return sink.getvalue().encode()


def jsonl_bytes(records: Sequence[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def order(order_id: int, ts: str = "2025-04-01T10:00:00", amount: object = 10.5, **kw) -> list:
    row = {
        "order_num": 1,
        "order_id": order_id,
        "user_id": 7,
        "order_timestamp": ts,
        "total_amount": amount,
        "date": ts[:10],
    }
    row.update(kw)
    return [row[c] for c in ORDERS_HEADER]
