"""Validation: header against the contract, then every row typed and checked with SQL.

The rules are the contract's; the SQL that applies them is generated here and run by DuckDB
over the Arrow tables the readers make, one sheet at a time (no copies into Python objects).

Header tolerance: names are compared case-insensitively with surrounding white space ignored;
column order is free; every required contract column must be present exactly once, an optional
one may be absent (a producer that predates it: its values are NULL). Values under columns the
contract does not know are kept per row in ``_rescued_data`` (and the columns reported).
Anything else rejects the whole file.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ecom_lakehouse.contracts import RESCUED_DATA, DatasetContract
from ecom_lakehouse.core.read.readers import RawPart, UnreadableFile, as_text, normalize_name

REASON = "_reason"
SOURCE_FILE = "_source_file"
SOURCE_SHEET = "_source_sheet"
SOURCE_ROW = "_source_row"
SHEET_INDEX = "_sheet_index"
FILE_INDEX = "_file_index"  # a file's place in a batch of files validated together
RAW_PREFIX = "__raw__"


# Functions a contract's rules and derived columns may call beside DuckDB's own, named and
# meaning as in Spark SQL (the Spark job checks the rules again). ``to_date(ts)``: a timestamp's
# day in UTC, by integer arithmetic: DuckDB's CAST(ts AS DATE) goes through ICU's calendar,
# six times slower (it was the largest cost of the orders' checks).
_DAY_US, _EPOCH_US = 86_400_000_000, "epoch_us(CAST(ts AS TIMESTAMPTZ))"
RULE_FUNCTIONS = (
    f"to_date(ts) AS DATE '1970-01-01' + CAST(({_EPOCH_US}"
    f" - ({_EPOCH_US} % {_DAY_US} + {_DAY_US}) % {_DAY_US}) // {_DAY_US} AS INTEGER)",
)


class InvalidSchema(Exception):
    """The file's header does not match the dataset's contract."""


@dataclass
class ValidationResult:
    valid: pa.Table  # typed, in the contract's schema, one row per key
    rejected: pa.Table  # the raw text of each rejected row, with reason and source position
    rows_read: int
    sheets: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        return reasons_counted(self.rejected)


def header_mapping(
    contract: DatasetContract, header: list[str]
) -> tuple[list[int | None], list[tuple[str, int]]]:
    """Position of each contract column in ``header`` (None: an optional column it lacks), and
    the extra columns with theirs (a blank name is called by its place: ``column 7``).

    Raises InvalidSchema naming what is missing or duplicated.
    """
    normalized = [normalize_name(h) for h in header]
    duplicated = sorted(n for n, k in Counter(normalized).items() if k > 1 and n)
    expected = contract.source_column_names
    missing = [c.name for c in contract.source_columns if c.required and c.name not in normalized]
    if missing or duplicated:
        problems = []
        if missing:
            problems.append(f"missing columns {missing}")
        if duplicated:
            problems.append(f"duplicated columns {duplicated}")
        raise InvalidSchema(
            f"header does not match the {contract.name} contract: {'; '.join(problems)}. "
            f"Expected {list(expected)}, found {header}"
        )
    positions = [normalized.index(c) if c in normalized else None for c in expected]
    extra = [
        (h.strip() or f"column {i + 1}", i)
        for i, (h, n) in enumerate(zip(header, normalized, strict=True))
        if n not in expected
    ]
    return positions, extra


def rescued(table: pa.Table, extra: list[tuple[str, int]]) -> pa.Array:
    """Per row, its non-empty values under the ``extra`` columns as JSON text (as the file
    shows them), or NULL."""
    if not extra:
        return pa.nulls(table.num_rows, pa.string())
    names = [name for name, _ in extra]
    texts = [as_text(table.column(f"c{position}")).to_pylist() for _, position in extra]
    values = []
    for row in zip(*texts, strict=True):
        found = {k: v for k, v in zip(names, row, strict=True) if v is not None and v != ""}
        values.append(json.dumps(found, ensure_ascii=False) if found else None)
    return pa.array(values, pa.string())


def _aligned(
    contract: DatasetContract, part: RawPart, index: int, file_index: int = 0
) -> tuple[pa.Table, list[str]]:
    """One part's columns in contract order (cells typed where the contract's type reads them
    as they are, text otherwise), plus source position columns."""
    where = f" (sheet {part.sheet!r})" if part.sheet is not None else ""
    try:
        positions, extra = header_mapping(contract, part.header)
    except InvalidSchema as exc:
        raise InvalidSchema(f"{exc}{where}") from None
    table = part.table
    n = table.num_rows
    cells: list[pa.Array | pa.ChunkedArray] = []
    for column, position in zip(contract.source_columns, positions, strict=True):
        if position is None:
            cells.append(pa.nulls(n, pa.string()))
            continue
        cell = table.column(f"c{position}")
        cells.append(cell if reads_as_typed(cell.type, column.sql_type) else as_text(cell))
    columns = [
        *cells,
        rescued(table, extra),
        pa.array(np.full(n, file_index, dtype=np.int32)),
        pa.array([part.sheet] * n, pa.string()),
        pa.array(np.full(n, index, dtype=np.int32)),
        table.column(SOURCE_ROW),
    ]
    names = [
        *(RAW_PREFIX + c for c in contract.carried_column_names),
        FILE_INDEX,
        SOURCE_SHEET,
        SHEET_INDEX,
        SOURCE_ROW,
    ]
    return pa.table(columns, names=names), [name for name, _ in extra]


# The cell types a column is typed from as they are, by the SQL type it is cast to; a cell of
# any other type is validated from its text, like a CSV value.
_NUMBERS = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
TYPED_CELLS: dict[str, tuple[Callable[[pa.DataType], bool], ...]] = {
    "BIGINT": _NUMBERS,
    "INTEGER": _NUMBERS,
    "DOUBLE": _NUMBERS,
    "DECIMAL": _NUMBERS,
    "BOOLEAN": (pa.types.is_boolean,),
    "DATE": (pa.types.is_date32, pa.types.is_timestamp),  # the day, as the SQL's cast
    "TIMESTAMPTZ": (pa.types.is_timestamp,),
}


@functools.cache  # asked per column of every part: thousands of times for a stream's batch
def reads_as_typed(cell_type: pa.DataType, sql_type: str) -> bool:
    family = sql_type.partition("(")[0]
    return any(accepts(cell_type) for accepts in TYPED_CELLS.get(family, ()))


def _concat(batch: list[pa.Table]) -> pa.Table:
    """One table of a batch of parts; a column typed differently by two parts is read as text."""
    mixed = {
        name
        for name in batch[0].column_names
        if len({part.schema.field(name).type for part in batch}) > 1
    }
    if mixed:
        batch = [
            pa.table(
                [as_text(part[n]) if n in mixed else part[n] for n in part.column_names],
                names=part.column_names,
            )
            for part in batch
        ]
    return pa.concat_tables(batch)


def _present(column: str, text: bool) -> str:
    """The raw value, NULL when the cell is empty (blank text counts as empty)."""
    raw = _q(RAW_PREFIX + column)
    return f"NULLIF(trim({raw}), '')" if text else raw


def as_shown(expression: str, raw_type: pa.DataType) -> str:
    """A raw value as text, as the spreadsheet shows it (a whole number has no ``.0``)."""
    if pa.types.is_floating(raw_type):
        return (
            f"CASE WHEN {expression} % 1 = 0 AND abs({expression}) < 1e15 "
            f"THEN CAST(CAST({expression} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST({expression} AS VARCHAR) END"
        )
    return f"CAST({expression} AS VARCHAR)"


# Text columns Arrow types whole, before the SQL (see ``pretyped``), beside their text.
PRETYPED = "__typed_"
# A zone-aware timestamp is cast from text that names its zone; text without one is read as
# UTC (the SQL's session zone), through the naive type.
NAIVE_TIMESTAMP = pa.timestamp("us")


def arrow_cast(text: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray | None:
    """``text`` cast whole to ``target`` by Arrow, or None when any value does not cast."""
    if pa.types.is_timestamp(target) and target.tz is not None and not _casts(text, target):
        naive = arrow_cast(text, NAIVE_TIMESTAMP)
        return None if naive is None else naive.cast(pa.timestamp(target.unit, target.tz))
    try:
        return pc.cast(text, target) if _casts(text, target) else None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


PROBE_ROWS = 1024


def _casts(values: pa.ChunkedArray, target: pa.DataType) -> bool:
    """Whether the first values cast: a failed cast of a whole column costs as much as one
    that succeeds (0.15 s for 2M timestamps), so a column that fails at once is told early."""
    try:
        pc.cast(values.slice(0, PROBE_ROWS), target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


# The casts ``pretyped`` leaves to Arrow, by the cells' type and the column's: text to any type,
# and those cells whose cast Arrow does as the SQL would. Other casts are the SQL's (a double's
# rounding to a decimal is DuckDB's own; a timestamp is no number).
ARROW_CASTS: tuple[tuple[Callable[[pa.DataType], bool], Callable[[pa.DataType], bool]], ...] = (
    (pa.types.is_string, lambda _: True),
    (pa.types.is_timestamp, lambda t: pa.types.is_timestamp(t) or pa.types.is_date32(t)),
    (pa.types.is_decimal, pa.types.is_decimal),
)


def pretyped(raw: pa.Table, contract: DatasetContract) -> pa.Table:
    """``raw`` with a typed copy of each text column that Arrow casts whole: every value a
    plain literal of the column's type (``42``, ``10.50``, ``2025-04-01 10:00:00``), which the
    SQL's casts read the same (``test_validation`` pins the cases); and of each column of
    timestamp cells (a day, or UTC) or decimals (to the contract's scale, when no digit is
    lost), which both cast alike. Arrow's cast is strict and
    vectorized; a column with any other value (a fraction in an integer column, a blank, a
    date in another layout, a price with three decimals) is left to the SQL's rules. The text
    stays: it is what a rejected row shows."""
    for column in contract.source_columns:
        name = RAW_PREFIX + column.name
        index = raw.schema.get_field_index(name)
        if index < 0 or column.sql_type == "VARCHAR":
            continue
        cells = raw.schema.field(index).type
        if not any(cell(cells) and target(column.arrow_type) for cell, target in ARROW_CASTS):
            continue
        typed = arrow_cast(raw.column(name), column.arrow_type)
        if typed is not None:
            raw = raw.append_column(PRETYPED + column.name, typed)
    return raw


def _typed(column: str, sql_type: str, raw_type: pa.DataType, pretyped: bool = False) -> str:
    if pretyped:
        return _q(PRETYPED + column)
    value = _present(column, not reads_as_typed(raw_type, sql_type))
    if sql_type in ("BIGINT", "INTEGER") and not pa.types.is_integer(raw_type):
        # DuckDB rounds 1.5 to 2 when casting to an integer; a fraction is an error here. The
        # integer itself is cast from the value, not from a double, so no digit is lost.
        number = value if pa.types.is_floating(raw_type) else f"TRY_CAST({value} AS DOUBLE)"
        return f"CASE WHEN {number} % 1 = 0 THEN TRY_CAST({value} AS {sql_type}) END"
    return f"TRY_CAST({value} AS {sql_type})"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


POSITION_COLUMNS = (FILE_INDEX, SOURCE_SHEET, SHEET_INDEX, SOURCE_ROW)
POSITION = ", ".join(POSITION_COLUMNS)
# A row's place: which file, which sheet, which row (what joins a row to its raw text).
PLACE = (FILE_INDEX, SHEET_INDEX, SOURCE_ROW)


def typed_in_arrow(contract: DatasetContract, raw_types: dict[str, pa.DataType]) -> dict[str, str]:
    """The validated columns whose typed values ``raw`` already holds (by the raw column that
    holds them): those Arrow typed (``pretyped``), cells of the contract's own type that the
    SQL would cast to themselves (not text: the SQL trims text), and the rescued data. The
    checks' SQL computes only the others; these are never copied through it."""
    held = {}
    for column in contract.source_columns:
        raw = RAW_PREFIX + column.name
        if PRETYPED + column.name in raw_types:
            held[column.name] = PRETYPED + column.name
        elif raw_types[raw] == column.arrow_type and not pa.types.is_string(column.arrow_type):
            held[column.name] = raw
    held[RESCUED_DATA] = RAW_PREFIX + RESCUED_DATA
    return held


def row_checks_sql(
    contract: DatasetContract, raw_types: dict[str, pa.DataType], held: dict[str, str]
) -> str:
    """Over a batch of parts (``raw``, whose columns have ``raw_types``): the typed columns that
    ``raw`` does not already hold (``held``: see ``typed_in_arrow``), the row's place, and a
    reason that is NULL when the row breaks no type, required or business rule. Rows come out
    in ``raw``'s order (DuckDB keeps insertion order)."""
    kinds = [(raw_types[RAW_PREFIX + c.name], c) for c in contract.source_columns]
    typed = ",\n  ".join(
        f"{_typed(c.name, c.sql_type, t, PRETYPED + c.name in raw_types)} AS {_q(c.name)}"
        for t, c in kinds
    )
    raw_cols = ", ".join(_q(RAW_PREFIX + c) for c in contract.source_column_names)
    rescued_data = f"{_q(RAW_PREFIX + RESCUED_DATA)} AS {_q(RESCUED_DATA)}"
    derived = "".join(
        f", CAST(({c.derived}) AS {c.sql_type}) AS {_q(c.name)}"
        for c in contract.columns
        if c.derived is not None
    )
    checks = []
    for raw_type, c in kinds:
        if PRETYPED + c.name in raw_types:
            # Every value cast (a blank one does not), so a value is missing only where the
            # text is: the one check left is whether the column is required.
            if c.required:
                checks.append(f"CASE WHEN {_q(c.name)} IS NULL THEN '{c.name}: required' END")
            continue
        text = not reads_as_typed(raw_type, c.sql_type)
        present = _present(c.name, text)
        shown = as_shown(present, raw_type)
        checks.append(
            f"CASE WHEN {present} IS NOT NULL AND {_q(c.name)} IS NULL "
            f"THEN '{c.name}: not a valid {c.type}: ' || left({shown}, 100) END"
        )
        if c.required:
            checks.append(f"CASE WHEN {present} IS NULL THEN '{c.name}: required' END")
    for rule in contract.rules:
        checks.append(f"CASE WHEN NOT coalesce(({rule.sql}), TRUE) THEN 'rule {rule.name}' END")
    names = "".join(f"{_q(c)}, " for c in contract.validated_column_names if c not in held)
    return f"""
WITH typed AS (SELECT {typed}, {rescued_data}, {raw_cols}, {POSITION} FROM raw),
derived AS (SELECT *{derived} FROM typed)
SELECT {names}{SOURCE_ROW}, NULLIF(concat_ws('; ', {", ".join(checks)}), '') AS {REASON}
FROM derived
"""


def checked_rows(
    contract: DatasetContract, raw: pa.Table, computed: pa.Table, held: dict[str, str]
) -> pa.Table:
    """The validated columns of a batch, taken from ``raw`` where it holds them typed and from
    the checks' result (``computed``, in ``raw``'s row order) otherwise; the row's place, and
    the reason."""
    if not computed.column(SOURCE_ROW).equals(raw.column(SOURCE_ROW)):
        raise RuntimeError("the row checks returned the rows in another order than read")
    names = [*contract.validated_column_names, *POSITION_COLUMNS]
    columns = [
        raw.column(held[name]) if name in held else computed.column(name)
        for name in contract.validated_column_names
    ]
    columns += [raw.column(name) for name in POSITION_COLUMNS]
    return pa.table([*columns, computed.column(REASON)], names=[*names, REASON])


def superseded_sql(contract: DatasetContract) -> str:
    """Over the good rows of every part: the rows that lose de-duplication of their key (the
    latest ``sequence_by`` wins, then the later sheet, then the later row), with the winner."""
    key = [_q(c) for c in contract.key_columns]
    order = ", ".join(f"{_q(c)} DESC NULLS LAST" for c in contract.sequence_by)
    order = f"{order + ', ' if order else ''}{SHEET_INDEX} DESC, {SOURCE_ROW} DESC"
    window = f"PARTITION BY {FILE_INDEX}, {', '.join(key)} ORDER BY {order}"
    # The window sees only the columns it needs (and a hash of the row, to tell an exact copy
    # from a different version of the key); the losers' values are joined back after.
    values = ", ".join(_q(c) for c in contract.carried_column_names)
    narrow = ", ".join(dict.fromkeys([*key, *map(_q, contract.sequence_by), POSITION]))
    return f"""
SELECT g.*, w._winner, w._row_hash = w._winner_hash AS _exact FROM (
  SELECT {", ".join(PLACE)}, _row_hash, row_number() OVER ({window}) AS _rank,
    first_value(coalesce({SOURCE_SHEET} || ' row ', 'row ') || {SOURCE_ROW})
      OVER ({window}) AS _winner,
    first_value(_row_hash) OVER ({window}) AS _winner_hash
  FROM (SELECT {narrow}, hash({values}) AS _row_hash FROM good)
) w JOIN good g USING ({", ".join(PLACE)})
WHERE w._rank > 1
"""


def duplicate_reason(contract: DatasetContract) -> str:
    """The reason a superseded row is rejected with (a SQL expression over ``superseded``): an
    exact copy of the row kept, or another version of its key. The part before the colon is
    what ``rejected_by_reason`` counts."""
    label, key = contract.key_label, contract.key_columns
    values = " || ', ' || ".join(_q(c) for c in key)
    value = values if len(key) == 1 else f"'(' || {values} || ')'"
    return (
        f"CASE WHEN _exact THEN 'exact duplicate: the same values as ' || _winner"
        f" ELSE 'duplicate {label}: {label} ' || {value} || ' is superseded by ' || _winner END"
    )


# Parts are checked in batches of about this many rows: few enough to bound memory, enough for
# DuckDB to use every core (one small sheet at a time would run on one).
BATCH_ROWS = 50_000

# Rows per Arrow chunk of a DuckDB result. DuckDB reserves every column of a chunk for this
# many rows up front; at its default (1,000,000) each checked batch held ~15x the memory its
# rows need, and whether those reserved pages were resident varied from run to run (the
# 100,000-order benchmark's validation peaked at ~500 or ~700 MB).
ARROW_CHUNK_ROWS = 65_536


def _arrow(result: duckdb.DuckDBPyConnection) -> pa.Table:
    return result.to_arrow_table(ARROW_CHUNK_ROWS)


def _position(rows: pa.Table) -> pa.Array:
    """Each row's place as one number: file (up to 2^19 in a batch), sheet (2^12), row (2^32)."""
    file = pc.multiply(pc.cast(rows.column(FILE_INDEX), pa.int64()), 1 << 44)
    sheet = pc.multiply(pc.cast(rows.column(SHEET_INDEX), pa.int64()), 1 << 32)
    return pc.add(pc.add(file, sheet), rows.column(SOURCE_ROW)).combine_chunks()


def key_repeats(rows: pa.Table, key: tuple[str, ...]) -> bool:
    """Whether a key (one column, or several together) occurs in more than one row."""
    if len(key) == 1:
        return has_repeats(rows.column(key[0]))
    keys = rows.select(list(key)).drop_null()
    return keys.group_by(list(key)).aggregate([]).num_rows < keys.num_rows


def has_repeats(values: pa.ChunkedArray) -> bool:
    """Whether a non-null value occurs more than once. Integers are sorted by NumPy, which
    needs one copy of the column; Arrow's hash kernels took ~75 MB for 550,000 keys."""
    present = values.drop_null()
    if pa.types.is_integer(present.type):
        ordered = np.sort(present.to_numpy())
        return bool(np.any(ordered[1:] == ordered[:-1]))
    return pc.count_distinct(present).as_py() < len(present)


class _RowChecker:
    """Checks batches of aligned parts with DuckDB; keeps the good rows (typed, with their
    position) as Arrow batches and the bad rows' text in a DuckDB table.

    A batch is checked on a worker thread while the caller reads the next one (fastexcel and
    DuckDB both release the GIL), so reading and checking overlap; at most one batch is in
    flight, which keeps memory bounded. Good rows are held once, as Arrow: DuckDB scans them
    in place to de-duplicate and a file without duplicates is returned without a copy."""

    def __init__(self, contract: DatasetContract) -> None:
        self.contract = contract
        self.names = ", ".join(_q(c) for c in contract.carried_column_names)
        text_ddl = ", ".join(f"{_q(c)} VARCHAR" for c in contract.carried_column_names)
        positions_ddl = (
            f"{FILE_INDEX} INTEGER, {SOURCE_SHEET} VARCHAR, {SHEET_INDEX} INTEGER,"
            f" {SOURCE_ROW} BIGINT"
        )
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")  # text timestamps without a zone are UTC
        for function in RULE_FUNCTIONS:
            self.con.execute(f"CREATE MACRO {function}")
        self.con.execute(f"CREATE TEMP TABLE bad ({text_ddl}, {REASON} VARCHAR, {positions_ddl})")
        self.good: list[pa.Table] = []
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="validate")
        self._checking: Future[None] | None = None

    def submit(self, batch: list[pa.Table]) -> None:
        self.wait()
        self._checking = self._worker.submit(self._check, batch)

    def wait(self) -> None:
        if self._checking is not None:
            self._checking.result()
            self._checking = None

    def close(self) -> None:
        self._worker.shutdown(wait=True)  # a check still running when reading failed ends first
        self.con.close()

    def _check(self, batch: list[pa.Table]) -> None:
        con, contract = self.con, self.contract
        raw = pretyped(_concat(batch), contract)
        raw_types = dict(zip(raw.column_names, raw.schema.types, strict=True))
        con.register("raw", raw)
        try:
            held = typed_in_arrow(contract, raw_types)
            computed = _arrow(con.execute(row_checks_sql(contract, raw_types, held)))
            checked = checked_rows(contract, raw, computed, held)
            del computed
            reasons = checked.column(REASON)
            if reasons.null_count == checked.num_rows:  # every row is good: no copy
                self.good.append(checked.drop_columns([REASON]))
                return
            self.good.append(checked.filter(pc.is_null(reasons)).drop_columns([REASON]))
            raw_text = ", ".join(
                as_shown(f"r.{_q(RAW_PREFIX + c)}", raw_types[RAW_PREFIX + c])
                for c in contract.carried_column_names
            )
            con.register("checked", checked)
            on = " AND ".join(f"r.{c} = c.{c}" for c in PLACE)
            con.execute(
                f"INSERT INTO bad SELECT {raw_text}, c.{REASON}, c.{FILE_INDEX}, c.{SOURCE_SHEET},"
                f" c.{SHEET_INDEX}, c.{SOURCE_ROW} FROM checked c JOIN raw r ON {on}"
                f" WHERE c.{REASON} IS NOT NULL"
            )
            con.unregister("checked")
        finally:
            con.unregister("raw")

    def results(self) -> tuple[pa.Table, pa.Table]:
        """The good rows de-duplicated within their file (file order, with ``_file_index``),
        and every rejected row with its reason (ordered by file, then place)."""
        con, contract, names = self.con, self.contract, self.names
        good = pa.concat_tables(self.good) if self.good else self._no_good_rows()
        self.good.clear()
        con.register("good", good)
        superseded = ""
        # Most files repeat no key: then the window that de-duplicates is not needed.
        if key_repeats(good, contract.key_columns):
            con.execute(f"CREATE TEMP TABLE superseded AS {superseded_sql(contract)}")
            losers = _arrow(con.execute(f"SELECT {', '.join(PLACE)} FROM superseded"))
            # The losers are few: filtering them out keeps the file's order with no sort.
            kept = pc.invert(pc.is_in(_position(good), value_set=_position(losers)))
            valid = good.filter(kept)
            # Superseded duplicates passed every rule: their values are kept as typed, as text.
            as_text = ", ".join(
                f"CAST({_q(c)} AS VARCHAR) AS {_q(c)}" for c in contract.carried_column_names
            )
            superseded = (
                f" UNION ALL SELECT {as_text}, {duplicate_reason(contract)},"
                f" {POSITION} FROM superseded"
            )
        else:  # the good rows are the answer as they are, in file order
            valid = good
        rejected = _arrow(
            con.execute(
                f"SELECT * EXCLUDE ({SHEET_INDEX}) FROM ("
                f"SELECT {names}, {REASON}, {POSITION} FROM bad"
                f"{superseded}) ORDER BY {', '.join(PLACE)}"
            )
        )
        con.unregister("good")
        return valid.select([*contract.validated_column_names, FILE_INDEX]), rejected

    def _no_good_rows(self) -> pa.Table:
        typed = ", ".join(
            f"NULL::{c.sql_type} AS {_q(c.name)}" for c in self.contract.validated_columns
        )
        return _arrow(
            self.con.execute(
                f"SELECT {typed}, NULL::INTEGER AS {FILE_INDEX}, NULL::VARCHAR AS {SOURCE_SHEET},"
                f" NULL::INTEGER AS {SHEET_INDEX}, NULL::BIGINT AS {SOURCE_ROW} LIMIT 0"
            )
        )


@dataclass
class FileCheck:
    """One file of a batch validated together: what was read of it, or why it could not be."""

    file_key: str
    rows_read: int = 0
    rows_valid: int = 0
    rejected: pa.Table | None = None  # its rejected rows (text, reason, _source_file, place)
    sheets: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    malformed: list[tuple[str | None, int, str]] = field(default_factory=list)
    error: UnreadableFile | InvalidSchema | None = None  # the whole file is rejected

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        return reasons_counted(self.rejected)


def reasons_counted(rejected: pa.Table | None) -> dict[str, int]:
    """How many rejected rows per reason (the part of each reason before its colon)."""
    counts: Counter[str] = Counter()
    for reason in rejected.column(REASON).to_pylist() if rejected is not None else []:
        for part in reason.split("; "):
            counts[part.split(":", 1)[0]] += 1
    return dict(counts.most_common())


@dataclass
class BatchValidation:
    valid: pa.Table  # the good rows of every readable file, typed, with ``_file_index``
    files: list[FileCheck]


def validate_files(
    contract: DatasetContract, files: Iterable[tuple[str, Iterable[RawPart]]]
) -> BatchValidation:
    """Check every row of every file, the files of a batch together (one DuckDB pass however
    many small files there are). A file that cannot be read or whose header is wrong is
    reported with its error and contributes nothing; the others are not held back.

    Parts are consumed in batches of rows: only the typed good rows already checked (and the
    bad rows' text) are kept while the next parts are read."""
    checks: list[FileCheck] = []
    checker = _RowChecker(contract)
    try:
        pending: list[pa.Table] = []
        pending_rows = 0
        for file_index, (file_key, parts) in enumerate(files):
            check = FileCheck(file_key)
            checks.append(check)
            try:
                for index, part in enumerate(parts):
                    raw, extra = _aligned(contract, part, index, file_index)
                    check.extra_columns += [e for e in extra if e not in check.extra_columns]
                    if part.sheet is not None:
                        check.sheets.append(part.sheet)
                    check.malformed += [(part.sheet, n, why) for n, why in part.malformed]
                    check.rows_read += raw.num_rows
                    pending.append(raw)
                    pending_rows += raw.num_rows
                    del part, raw  # the batch holds the rows until they are checked, no longer
                    if pending_rows >= BATCH_ROWS:
                        checker.submit(pending)
                        pending, pending_rows = [], 0
            except (UnreadableFile, InvalidSchema) as exc:
                check.error = exc
                # a part holds the rows of one file; an empty part holds none to drop
                pending = [
                    t
                    for t in pending
                    if not t.num_rows or t.column(FILE_INDEX)[0].as_py() != file_index
                ]
                pending_rows = sum(t.num_rows for t in pending)
        if pending:
            checker.submit(pending)
            del pending
        checker.wait()
        valid, rejected = checker.results()
    finally:
        checker.close()
    failed = pa.array([i for i, c in enumerate(checks) if c.error], pa.int32())
    if len(failed):  # rows of files rejected whole that were checked before the error showed
        valid = valid.filter(pc.invert(pc.is_in(valid.column(FILE_INDEX), value_set=failed)))
        rejected = rejected.filter(
            pc.invert(pc.is_in(rejected.column(FILE_INDEX), value_set=failed))
        )
    _share_out(contract, checks, valid, rejected)
    schema = contract.arrow_schema.append(pa.field(FILE_INDEX, pa.int32()))
    return BatchValidation(valid.cast(schema), checks)


def _share_out(
    contract: DatasetContract, checks: list[FileCheck], valid: pa.Table, rejected: pa.Table
) -> None:
    """Each file's counts and rejected rows (with its key as ``_source_file``)."""
    per_file = np.bincount(valid.column(FILE_INDEX).to_numpy(), minlength=len(checks))
    indices = rejected.column(FILE_INDEX).to_numpy()
    for file_index, check in enumerate(checks):
        if check.error:
            continue
        check.rows_valid = int(per_file[file_index])
        rows = rejected.filter(pa.array(indices == file_index)).drop_columns([FILE_INDEX])
        rows = rows.add_column(
            rows.schema.get_field_index(REASON) + 1,
            SOURCE_FILE,
            pa.repeat(pa.scalar(check.file_key), rows.num_rows),
        )
        if check.malformed:
            malformed = _malformed_rows(contract, check.malformed, check.file_key)
            rows = pa.concat_tables([rows, malformed.cast(rows.schema)])
        check.rejected = rows
        check.rows_read += len(check.malformed)


def validate(
    contract: DatasetContract, parts: Iterable[RawPart], source_file: str
) -> ValidationResult:
    """One file's rows checked (see ``validate_files``); a file that cannot be read or whose
    header is wrong raises."""
    batch = validate_files(contract, [(source_file, parts)])
    (check,) = batch.files
    if check.error:
        raise check.error
    if check.rejected is None:  # every readable file is given its rejected rows (maybe none)
        raise RuntimeError(f"{source_file}: validated without its rejected rows")
    return ValidationResult(
        valid=batch.valid.drop_columns([FILE_INDEX]),
        rejected=check.rejected,
        rows_read=check.rows_read,
        sheets=check.sheets,
        extra_columns=check.extra_columns,
    )


def _malformed_rows(
    contract: DatasetContract, rows: list[tuple[str | None, int, str]], source_file: str
) -> pa.Table:
    """Rows the reader could not split into fields (CSV): rejected with the reader's reason."""
    columns: dict[str, pa.Array] = {
        c: pa.nulls(len(rows), pa.string()) for c in contract.carried_column_names
    }
    columns[REASON] = pa.array([r for _, _, r in rows], pa.string())
    columns[SOURCE_FILE] = pa.array([source_file] * len(rows), pa.string())
    columns[SOURCE_SHEET] = pa.array([s for s, _, _ in rows], pa.string())
    columns[SOURCE_ROW] = pa.array([line for _, line, _ in rows], pa.int64())
    return pa.table(columns)
