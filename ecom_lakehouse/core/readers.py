"""Readers: a landed file (a local copy, or its bytes) -> Arrow tables, one per sheet.

Values are read as the file gives them: text for CSV; the cell's own type for XLSX, JSON and
Parquet when it is a plain scalar (number, text, boolean, date, timestamp), and text otherwise
(nested values as JSON). Validation types and checks every value by the contract's rules, from
text or from the cell's type, so every format follows the same rules. Each part keeps where its
rows came from (sheet and row number as a person would find them: row 1 is the header).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import fastexcel
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

# File suffix -> format name used in contracts.
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}


# A landed file: a local copy, which the readers read in pieces (the pipeline downloads each
# file, so a large one is never whole in memory), or its bytes.
Source = Path | bytes


class UnreadableFile(Exception):
    """The bytes cannot be read as the format they claim (corrupt, empty, wrong format)."""


@dataclass
class RawPart:
    """One sheet (or the whole file for flat formats): text columns named as in the header."""

    sheet: str | None
    header: list[str]
    table: pa.Table  # columns c0..cN (positional, scalars or text) + _source_row
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (row, reason)


def detect_format(key: str) -> str | None:
    return FORMATS.get(PurePosixPath(key).suffix.lower())


def iter_parts(source: Source, fmt: str) -> Iterator[RawPart]:
    """The file's parts, one sheet at a time (only one sheet's rows are in memory at once)."""
    head = _head(source, HEAD_BYTES)
    if not head.strip() and len(head) < HEAD_BYTES:
        raise UnreadableFile("the file is empty")
    try:
        yield from READERS[fmt](source)
    except UnreadableFile:
        raise
    except Exception as exc:  # whatever a reader chokes on, the file is unreadable: say why
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnreadableFile(f"not a readable {fmt} file: {first_line[:300]}") from exc


def read_parts(source: Source, fmt: str) -> list[RawPart]:
    return list(iter_parts(source, fmt))


HEAD_BYTES = 65536


def _head(source: Source, size: int) -> bytes:
    if isinstance(source, Path):
        with source.open("rb") as file:
            return file.read(size)
    return source[:size]


def _arrow_input(source: Source) -> str | io.BytesIO:
    """What Arrow's readers take: a path (read in pieces) or the bytes."""
    return str(source) if isinstance(source, Path) else io.BytesIO(source)


def _positional(table: pa.Table, first_row: int) -> pa.Table:
    """Rename columns to c0..cN and add the row number each row had in the file."""
    table = table.rename_columns([f"c{i}" for i in range(table.num_columns)])
    rows = pa.array(np.arange(first_row, first_row + table.num_rows, dtype=np.int64))
    return table.append_column("_source_row", rows)


def _read_csv(source: Source) -> Iterator[RawPart]:
    text_head = _head(source, HEAD_BYTES).decode("utf-8-sig", errors="strict").splitlines()
    header = next(csv.reader(text_head[:1]), [])
    if not header:
        raise UnreadableFile("the file has no header line")
    names = [f"c{i}" for i in range(len(header))]
    malformed: list[tuple[int, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # number is the 1-based line in the file (header included) when pyarrow knows it
        malformed.append(
            (
                row.number if row.number is not None else -1,
                f"malformed row: expected {row.expected_columns} fields, "
                f"got {row.actual_columns}: {row.text[:200]}",
            )
        )
        return "skip"

    def parse(use_threads: bool) -> pa.Table:
        malformed.clear()
        return pacsv.read_csv(
            _arrow_input(source),
            read_options=pacsv.ReadOptions(
                column_names=names,
                skip_rows=1,
                encoding="utf8",
                block_size=1 << 24,
                use_threads=use_threads,
            ),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    table = parse(use_threads=True)
    if malformed:  # line numbers of bad rows are only known to a single-threaded parse
        table = parse(use_threads=False)
    header[0] = header[0].removeprefix("\ufeff")
    part = RawPart(sheet=None, header=header, table=table, malformed=malformed)
    if not malformed:
        part.table = _positional(table, first_row=2)
    else:
        # Skipped rows leave holes in the numbering; number the good rows around them.
        bad = {line for line, _ in malformed}
        numbers, line = [], 2
        for _ in range(table.num_rows):
            while line in bad:
                line += 1
            numbers.append(line)
            line += 1
        part.table = table.append_column("_source_row", pa.array(numbers, pa.int64()))
    yield part


def _read_xlsx(source: Source) -> Iterator[RawPart]:
    reader = fastexcel.read_excel(str(source) if isinstance(source, Path) else source)
    any_data = False
    for name in reader.sheet_names:
        # Cells keep their type (parsing numbers back from text would cost more than reading
        # them); an eager load is the fastest. Inferring from every row (not a sample) makes a
        # column that mixes numbers and text a text column, so no value is coerced away.
        batch = reader.load_sheet(name, header_row=0, schema_sample_rows=None, eager=True)
        table = _scalars_or_text(pa.Table.from_batches([batch]))
        if table.num_columns == 0:
            continue  # a blank sheet carries no header and no rows
        any_data = True
        header = [str(n) for n in table.column_names]
        yield RawPart(sheet=name, header=header, table=_positional(table, first_row=2))
    if not any_data:
        raise UnreadableFile("the workbook has no sheet with data")


def is_plain_scalar(type_: pa.DataType) -> bool:
    """A type validation reads as it is; any other column is read as text."""
    return (
        pa.types.is_string(type_)
        or pa.types.is_integer(type_)
        or pa.types.is_floating(type_)
        or pa.types.is_boolean(type_)
        or pa.types.is_date(type_)
        or pa.types.is_timestamp(type_)
    )


def as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column as text: scalars by Arrow's cast, nested values as JSON."""
    if pa.types.is_nested(column.type):
        values = [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()]
        return pa.chunked_array([pa.array(values, pa.string())])
    return column.cast(pa.string())


def _scalars_or_text(table: pa.Table) -> pa.Table:
    columns = [c if is_plain_scalar(c.type) else as_text(c) for c in table.columns]
    return pa.table(columns, names=table.column_names)


def _read_jsonl(source: Source) -> Iterator[RawPart]:
    if _head(source, HEAD_BYTES).lstrip()[:1] == b"[":  # an array of records, not JSON lines
        records = json.loads(source.read_bytes() if isinstance(source, Path) else source)
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise UnreadableFile("a JSON file must hold records (objects), one per line or a list")
        table = pa.Table.from_pylist(records)
    else:
        table = pajson.read_json(_arrow_input(source))
    table = _scalars_or_text(table)
    yield RawPart(None, list(table.column_names), _positional(table, first_row=1))


def _read_parquet(source: Source) -> Iterator[RawPart]:
    table = _scalars_or_text(pq.read_table(_arrow_input(source)))
    yield RawPart(None, list(table.column_names), _positional(table, first_row=1))


READERS: dict[str, Callable[[Source], Iterator[RawPart]]] = {
    "csv": _read_csv,
    "xlsx": _read_xlsx,
    "jsonl": _read_jsonl,
    "parquet": _read_parquet,
}
