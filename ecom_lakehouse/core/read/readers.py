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
import re
import zipfile
from collections.abc import Callable, Collection, Iterator, Sequence
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


@dataclass(frozen=True)
class ReadLimits:
    """The most a landed file may hold to be read on this machine: rows, and bytes once
    uncompressed (a workbook is a zip: a few MB can unzip to GBs). None: no limit."""

    max_rows: int | None = None
    max_bytes: int | None = None


NO_LIMITS = ReadLimits()


class FileTooLarge(Exception):
    """The file passes a read limit: it is rejected whole, before it is read."""


def check_limits(source: Source, fmt: str, limits: ReadLimits) -> None:
    """Raise FileTooLarge when the file, as its format tells without reading its rows, passes
    ``limits``: a workbook's uncompressed size and its sheets' dimensions, a Parquet file's
    row count and uncompressed size, a text file's size."""
    if limits.max_rows is None and limits.max_bytes is None:
        return
    try:
        rows, size = _dimensions(source, fmt)
    except (OSError, ValueError, zipfile.BadZipFile, pa.ArrowException):
        return  # not what it claims to be: the reader says why
    advice = (
        "split it into smaller files, or raise the limit on a machine with the memory for it "
        "(the Spark engine, LAKEHOUSE_MERGE_ENGINE=glue or emr-serverless, merges on a "
        "cluster, but files are read and validated on the machine that runs Dagster)"
    )
    if limits.max_bytes is not None and size > limits.max_bytes:
        raise FileTooLarge(
            f"it holds {size / 2**20:,.0f} MB uncompressed, past the limit of "
            f"{limits.max_bytes / 2**20:,.0f} MB (LAKEHOUSE_MAX_FILE_BYTES): {advice}"
        )
    if limits.max_rows is not None and rows is not None and rows > limits.max_rows:
        raise FileTooLarge(
            f"it holds {rows:,} rows, past the limit of {limits.max_rows:,} "
            f"(LAKEHOUSE_MAX_FILE_ROWS): {advice}"
        )


# A worksheet's declared extent, in its first bytes: <dimension ref="A1:F3000001"/>.
SHEET_DIMENSION = re.compile(rb'<dimension ref="[A-Z]+[0-9]+:[A-Z]+([0-9]+)"')


def _dimensions(source: Source, fmt: str) -> tuple[int | None, int]:
    """The file's rows, when its format says so without reading them, and its size
    uncompressed."""
    if fmt == "xlsx":
        with zipfile.ZipFile(_arrow_input(source)) as book:
            size = sum(entry.file_size for entry in book.infolist())
            rows = 0
            for entry in book.infolist():
                if entry.filename.startswith("xl/worksheets/") and entry.filename.endswith(".xml"):
                    with book.open(entry) as sheet:
                        found = SHEET_DIMENSION.search(sheet.read(4096))
                    rows += int(found.group(1)) if found else 0
            return rows, size
    if fmt == "parquet":
        metadata = pq.ParquetFile(_arrow_input(source)).metadata
        groups = range(metadata.num_row_groups)
        return metadata.num_rows, sum(metadata.row_group(i).total_byte_size for i in groups)
    return None, source.stat().st_size if isinstance(source, Path) else len(source)


def detect_format(key: str) -> str | None:
    return FORMATS.get(PurePosixPath(key).suffix.lower())


def iter_parts(source: Source, fmt: str, columns: Collection[str] = ()) -> Iterator[RawPart]:
    """The file's parts, one sheet at a time (only one sheet's rows are in memory at once).

    ``columns`` are the names the header should hold: where the first line (or sheet row) is
    not the header (a title above it), the header is looked for among the first lines."""
    head = _head(source, HEAD_BYTES)
    if not head.strip() and len(head) < HEAD_BYTES:
        raise UnreadableFile("the file is empty")
    expected = {normalize_name(c) for c in columns}
    try:
        yield from READERS[fmt](source, expected)
    except UnreadableFile:
        raise
    except Exception as exc:  # whatever a reader chokes on, the file is unreadable: say why
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnreadableFile(f"not a readable {fmt} file: {first_line[:300]}") from exc


def read_parts(source: Source, fmt: str, columns: Collection[str] = ()) -> list[RawPart]:
    return list(iter_parts(source, fmt, columns))


def normalize_name(name: str) -> str:
    """Header names compare case-insensitively, ignoring surrounding white space."""
    return name.strip().lower()


# A title, a note or blank lines above the header: it is looked for this far down.
HEADER_SEARCH_ROWS = 10


def header_score(cells: Sequence[object], expected: set[str]) -> int:
    """How many of the expected column names a row holds."""
    return len(expected & {normalize_name(str(c)) for c in cells if c is not None})


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


# Byte order marks, and the encoding they announce (Excel's "Unicode text" is UTF-16).
BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class CsvLayout:
    encoding: str
    delimiter: str
    header_line: int  # 0-based line of the header
    header: list[str]


def csv_layout(head: bytes, expected: set[str]) -> CsvLayout:
    """The encoding (from a byte order mark; else UTF-8), the delimiter and the header line:
    the first line, unless a later one among the first few holds more expected names."""
    encoding = next((name for bom, name in BOMS if head.startswith(bom)), "utf8")
    text = head.decode(encoding, errors="strict" if len(head) < HEAD_BYTES else "ignore")
    lines = text.splitlines()[:HEADER_SEARCH_ROWS]
    if not lines:
        raise UnreadableFile("the file has no header line")
    best: tuple[int, int, str, list[str]] | None = None
    for number, line in enumerate(lines):
        for delimiter in DELIMITERS:
            cells = next(csv.reader([line], delimiter=delimiter), [])
            score = header_score(cells, expected) if expected else 0
            if (
                best is None
                or score > best[0]
                or (score == best[0] == 0 and number == 0 and len(cells) > len(best[3]))
            ):
                best = (score, number, delimiter, cells)
        if expected and best and best[0] == len(expected):
            break  # every column found: no need to look further down
    _, number, delimiter, header = best or (0, 0, ",", [])
    if not header:
        raise UnreadableFile("the file has no header line")
    header[0] = header[0].removeprefix("\ufeff")
    return CsvLayout(encoding, delimiter, number, header)


def _read_csv(source: Source, expected: set[str]) -> Iterator[RawPart]:
    layout = csv_layout(_head(source, HEAD_BYTES), expected)
    names = [f"c{i}" for i in range(len(layout.header))]
    malformed: list[tuple[int, str]] = []
    first_row = layout.header_line + 2  # 1-based line of the first row after the header

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # number is the 1-based line in the file (header included) when pyarrow knows it
        malformed.append(
            (
                row.number + layout.header_line if row.number is not None else -1,
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
                skip_rows=layout.header_line + 1,
                encoding="utf8" if layout.encoding == "utf-8-sig" else layout.encoding,
                block_size=1 << 24,
                use_threads=use_threads,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=layout.delimiter, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    table = parse(use_threads=True)
    if malformed:  # line numbers of bad rows are only known to a single-threaded parse
        table = parse(use_threads=False)
    part = RawPart(sheet=None, header=layout.header, table=table, malformed=malformed)
    if not malformed:
        part.table = _positional(table, first_row=first_row)
    else:
        # Skipped rows leave holes in the numbering; number the good rows around them.
        bad = {line for line, _ in malformed}
        numbers, line = [], first_row
        for _ in range(table.num_rows):
            while line in bad:
                line += 1
            numbers.append(line)
            line += 1
        part.table = table.append_column("_source_row", pa.array(numbers, pa.int64()))
    yield part


def _read_xlsx(source: Source, expected: set[str]) -> Iterator[RawPart]:
    reader = fastexcel.read_excel(str(source) if isinstance(source, Path) else source)
    any_data = False
    for name in reader.sheet_names:
        # Cells keep their type (parsing numbers back from text would cost more than reading
        # them); an eager load is the fastest. Inferring from every row (not a sample) makes a
        # column that mixes numbers and text a text column, so no value is coerced away.
        header_row = 0
        batch = reader.load_sheet(name, header_row=0, schema_sample_rows=None, eager=True)
        if expected and header_score(batch.schema.names, expected) < len(expected):
            header_row = _header_row(reader, name, expected)
            if header_row:  # a title above the header: read the sheet from the header down
                batch = reader.load_sheet(
                    name, header_row=header_row, schema_sample_rows=None, eager=True
                )
        table = _scalars_or_text(pa.Table.from_batches([batch]))
        if table.num_columns == 0:
            continue  # a blank sheet carries no header and no rows
        any_data = True
        header = [str(n) for n in table.column_names]
        first_row = header_row + 2
        yield RawPart(sheet=name, header=header, table=_positional(table, first_row=first_row))
    if not any_data:
        raise UnreadableFile("the workbook has no sheet with data")


def _header_row(reader: fastexcel.ExcelReader, sheet: str, expected: set[str]) -> int:
    """The 0-based row among the sheet's first rows holding the most expected names."""
    top = reader.load_sheet(sheet, header_row=None, n_rows=HEADER_SEARCH_ROWS, eager=True)
    rows = pa.Table.from_batches([top]).to_pylist()
    scores = [header_score(list(row.values()), expected) for row in rows]
    return max(range(len(scores)), key=lambda i: (scores[i], -i)) if scores else 0


def is_plain_scalar(type_: pa.DataType) -> bool:
    """A type validation reads as it is; any other column is read as text."""
    return (
        pa.types.is_string(type_)
        or pa.types.is_integer(type_)
        or pa.types.is_floating(type_)
        or pa.types.is_decimal(type_)
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


NOT_RECORDS = "a JSON file must hold records (objects), one per line or a list"


def _read_jsonl(source: Source, expected: set[str]) -> Iterator[RawPart]:
    """JSON lines, a JSON array of records, or one JSON object (pretty-printed or not). Lines
    that are not a JSON object are rows rejected with their line number, like a malformed CSV
    row; the other lines load."""
    head = _head(source, HEAD_BYTES).lstrip()
    data: bytes | None = None
    if head[:1] == b"[" or (head[:1] == b"{" and not _whole_first_line(head)):
        # an array of records, or maybe one object over many lines
        data = source.read_bytes() if isinstance(source, Path) else source
        try:
            whole = json.loads(data)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):
            whole = [whole]
        if isinstance(whole, list):
            if not all(isinstance(r, dict) for r in whole):
                raise UnreadableFile(
                    "a JSON file must hold records (objects), one per line or a list"
                )
            table = _scalars_or_text(_records_table(whole))
            yield RawPart(None, list(table.column_names), _positional(table, first_row=1))
            return
        if head[:1] == b"[":
            raise UnreadableFile("not a readable JSON file: the array is not valid JSON")
    try:
        table = pajson.read_json(_arrow_input(source))
    except pa.ArrowInvalid:  # a bad line, or values of mixed types: read line by line
        data = data or (source.read_bytes() if isinstance(source, Path) else source)
        yield _jsonl_by_line(data)
        return
    table = _scalars_or_text(table)
    yield RawPart(None, list(table.column_names), _positional(table, first_row=1))


def _whole_first_line(head: bytes) -> bool:
    """Whether the first line is a JSON value of its own (a JSON lines file: not parsed
    whole, which for a large file cost more than reading it)."""
    line = head.split(b"\n", 1)[0]
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _records_table(records: list[dict]) -> pa.Table:
    """Records as a table; where a column's values do not share one type, the column is text."""
    try:
        return pa.Table.from_pylist(records)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        names = list(dict.fromkeys(k for r in records for k in r))
        return pa.table(
            {n: pa.array([_text(r.get(n)) for r in records], pa.string()) for n in names}
        )


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (dict, list, bool)) else str(value)


def _jsonl_by_line(data: bytes) -> RawPart:
    records, lines, malformed = [], [], []
    for number, line in enumerate(data.decode("utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            malformed.append((number, f"malformed row: not JSON ({exc.msg}): {line[:200]}"))
            continue
        if not isinstance(record, dict):
            malformed.append((number, f"malformed row: not a JSON object: {line[:200]}"))
            continue
        records.append(record)
        lines.append(number)
    if not records:  # not one line of JSON records: not a JSON lines file at all
        raise UnreadableFile(f"not a readable JSON file: {malformed[0][1] if malformed else ''}")
    table = _scalars_or_text(_records_table(records))
    table = table.rename_columns([f"c{i}" for i in range(table.num_columns)])
    table = table.append_column("_source_row", pa.array(lines, pa.int64()))
    header = list(dict.fromkeys(k for r in records for k in r))
    return RawPart(None, header, table, malformed)


def _read_parquet(source: Source, expected: set[str]) -> Iterator[RawPart]:
    table = _scalars_or_text(pq.read_table(_arrow_input(source)))
    yield RawPart(None, list(table.column_names), _positional(table, first_row=1))


READERS: dict[str, Callable[[Source, set[str]], Iterator[RawPart]]] = {
    "csv": _read_csv,
    "xlsx": _read_xlsx,
    "jsonl": _read_jsonl,
    "parquet": _read_parquet,
}
