"""Validation: header against the contract, then every row typed and checked with SQL.

The rules are the contract's; the SQL that applies them is generated here and run by DuckDB
over the Arrow tables the readers make, one sheet at a time (no copies into Python objects).

Header tolerance: names are compared case-insensitively with surrounding white space ignored;
column order is free; extra columns are ignored (and reported); every contract column must be
present exactly once. Anything else rejects the whole file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.readers import RawPart

REASON = "_reason"
SOURCE_FILE = "_source_file"
SOURCE_SHEET = "_source_sheet"
SOURCE_ROW = "_source_row"
SHEET_INDEX = "_sheet_index"
RAW_PREFIX = "__raw__"


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
        counts: Counter[str] = Counter()
        for reason in self.rejected.column(REASON).to_pylist():
            for part in reason.split("; "):
                counts[part.split(":", 1)[0]] += 1
        return dict(counts.most_common())


def normalize_name(name: str) -> str:
    return name.strip().lower()


def header_mapping(contract: DatasetContract, header: list[str]) -> tuple[list[int], list[str]]:
    """Position of each contract column in ``header``, and the extra columns.

    Raises InvalidSchema naming what is missing or duplicated.
    """
    normalized = [normalize_name(h) for h in header]
    duplicated = sorted(n for n, k in Counter(normalized).items() if k > 1 and n)
    missing = [c for c in contract.column_names if c not in normalized]
    if missing or duplicated:
        problems = []
        if missing:
            problems.append(f"missing columns {missing}")
        if duplicated:
            problems.append(f"duplicated columns {duplicated}")
        raise InvalidSchema(
            f"header does not match the {contract.name} contract: {'; '.join(problems)}. "
            f"Expected {list(contract.column_names)}, found {header}"
        )
    positions = [normalized.index(c) for c in contract.column_names]
    extra = [h for h, n in zip(header, normalized, strict=True) if n not in contract.column_names]
    return positions, extra


def _aligned(contract: DatasetContract, part: RawPart, index: int) -> tuple[pa.Table, list[str]]:
    """One part's columns in contract order (raw text), plus source position columns."""
    where = f" (sheet {part.sheet!r})" if part.sheet is not None else ""
    try:
        positions, extra = header_mapping(contract, part.header)
    except InvalidSchema as exc:
        raise InvalidSchema(f"{exc}{where}") from None
    table = part.table
    n = table.num_rows
    columns = [
        *(table.column(f"c{p}") for p in positions),
        pa.array([part.sheet] * n, pa.string()),
        pa.array(np.full(n, index, dtype=np.int32)),
        table.column(SOURCE_ROW),
    ]
    names = [
        *(RAW_PREFIX + c for c in contract.column_names),
        SOURCE_SHEET,
        SHEET_INDEX,
        SOURCE_ROW,
    ]
    return pa.table(columns, names=names), extra


def _typed(column: str, sql_type: str) -> str:
    text = f"NULLIF(trim({_q(RAW_PREFIX + column)}), '')"
    if sql_type in ("BIGINT", "INTEGER"):
        # DuckDB rounds '1.5' to 2 when casting to an integer; a fraction is an error here.
        return (
            f"CASE WHEN TRY_CAST({text} AS DOUBLE) % 1 = 0 "
            f"THEN TRY_CAST(TRY_CAST({text} AS DOUBLE) AS {sql_type}) END"
        )
    return f"TRY_CAST({text} AS {sql_type})"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


POSITION = f"{SOURCE_SHEET}, {SHEET_INDEX}, {SOURCE_ROW}"


def row_checks_sql(contract: DatasetContract) -> str:
    """Over a batch of parts (``raw``): the typed columns, the position, and a reason that is
    NULL when the row breaks no type, required or business rule."""
    typed = ",\n  ".join(f"{_typed(c.name, c.sql_type)} AS {_q(c.name)}" for c in contract.columns)
    raw_cols = ", ".join(_q(RAW_PREFIX + c) for c in contract.column_names)
    checks = []
    for c in contract.columns:
        raw = f"NULLIF(trim({_q(RAW_PREFIX + c.name)}), '')"
        checks.append(
            f"CASE WHEN {raw} IS NOT NULL AND {_q(c.name)} IS NULL "
            f"THEN '{c.name}: not a valid {c.type}: ' || left({raw}, 100) END"
        )
        if c.required:
            checks.append(f"CASE WHEN {raw} IS NULL THEN '{c.name}: required' END")
    for rule in contract.rules:
        checks.append(f"CASE WHEN NOT coalesce(({rule.sql}), TRUE) THEN 'rule {rule.name}' END")
    names = ", ".join(_q(c) for c in contract.column_names)
    return f"""
WITH typed AS (SELECT {typed}, {raw_cols}, {POSITION} FROM raw)
SELECT {names}, {POSITION}, NULLIF(concat_ws('; ', {", ".join(checks)}), '') AS {REASON}
FROM typed
"""


def superseded_sql(contract: DatasetContract) -> str:
    """Over the good rows of every part: the rows that lose de-duplication of their key (the
    latest ``dedup_order`` wins, then the later sheet, then the later row), with the winner."""
    key = _q(contract.primary_key)
    order = ", ".join(f"{_q(c)} DESC NULLS LAST" for c in contract.dedup_order)
    order = f"{order + ', ' if order else ''}{SHEET_INDEX} DESC, {SOURCE_ROW} DESC"
    window = f"PARTITION BY {key} ORDER BY {order}"
    # The window sees only the columns it needs; the losers' values are joined back after.
    narrow = ", ".join(dict.fromkeys([key, *map(_q, contract.dedup_order), POSITION]))
    return f"""
SELECT g.*, w._winner FROM (
  SELECT {SHEET_INDEX}, {SOURCE_ROW}, row_number() OVER ({window}) AS _rank,
    first_value(coalesce({SOURCE_SHEET} || ' row ', 'row ') || {SOURCE_ROW})
      OVER ({window}) AS _winner
  FROM (SELECT {narrow} FROM good)
) w JOIN good g USING ({SHEET_INDEX}, {SOURCE_ROW})
WHERE w._rank > 1
"""


# Parts are checked in batches of about this many rows: few enough to bound memory, enough for
# DuckDB to use every core (one small sheet at a time would run on one).
BATCH_ROWS = 50_000


def validate(
    contract: DatasetContract, parts: Iterable[RawPart], source_file: str
) -> ValidationResult:
    """Check every row of every part. Parts are consumed in batches: only the typed good rows
    already checked (and the bad rows' text) are kept while the next parts are read."""
    names = ", ".join(_q(c) for c in contract.column_names)
    typed_ddl = ", ".join(f"{_q(c.name)} {c.sql_type}" for c in contract.columns)
    text_ddl = ", ".join(f"{_q(c)} VARCHAR" for c in contract.column_names)
    positions_ddl = f"{SOURCE_SHEET} VARCHAR, {SHEET_INDEX} INTEGER, {SOURCE_ROW} BIGINT"
    raw_text = ", ".join(f"r.{_q(RAW_PREFIX + c)}" for c in contract.column_names)
    rows_read, sheets, extra_columns = 0, [], []
    malformed: list[tuple[str | None, int, str]] = []
    con = duckdb.connect()

    def check(batch: list[pa.Table]) -> None:
        con.register("raw", pa.concat_tables(batch))
        con.execute(f"CREATE OR REPLACE TEMP TABLE checked AS {row_checks_sql(contract)}")
        con.execute(
            f"INSERT INTO good SELECT {names}, {POSITION} FROM checked WHERE {REASON} IS NULL"
        )
        con.execute(
            f"INSERT INTO bad SELECT {raw_text}, c.{REASON}, c.{SOURCE_SHEET}, c.{SHEET_INDEX},"
            f" c.{SOURCE_ROW} FROM checked c JOIN raw r ON r.{SHEET_INDEX} = c.{SHEET_INDEX}"
            f" AND r.{SOURCE_ROW} = c.{SOURCE_ROW} WHERE c.{REASON} IS NOT NULL"
        )
        con.unregister("raw")
        batch.clear()

    try:
        con.execute("SET TimeZone = 'UTC'")  # text timestamps without a zone are UTC
        con.execute(f"CREATE TEMP TABLE good ({typed_ddl}, {positions_ddl})")
        con.execute(f"CREATE TEMP TABLE bad ({text_ddl}, {REASON} VARCHAR, {positions_ddl})")
        batch: list[pa.Table] = []
        for index, part in enumerate(parts):
            raw, extra = _aligned(contract, part, index)
            extra_columns += [e for e in extra if e not in extra_columns]
            if part.sheet is not None:
                sheets.append(part.sheet)
            malformed += [(part.sheet, line, reason) for line, reason in part.malformed]
            rows_read += raw.num_rows
            batch.append(raw)
            if sum(t.num_rows for t in batch) >= BATCH_ROWS:
                check(batch)
        if batch:
            check(batch)
        con.execute(f"CREATE TEMP TABLE superseded AS {superseded_sql(contract)}")
        # `good` holds the rows in file order; without duplicates it is the answer as it is
        # (no anti-join and no sort over every row, which would double the memory).
        (duplicates,) = con.execute("SELECT count(*) FROM superseded").fetchone()
        losers = (
            f" WHERE NOT EXISTS (SELECT 1 FROM superseded s WHERE s.{SHEET_INDEX} ="
            f" g.{SHEET_INDEX} AND s.{SOURCE_ROW} = g.{SOURCE_ROW})"
            f" ORDER BY {SHEET_INDEX}, {SOURCE_ROW}"
        )
        valid = con.execute(
            f"SELECT {names} FROM good g{losers if duplicates else ''}"
        ).to_arrow_table()
        # Superseded duplicates passed every rule: their values are kept as typed, as text.
        as_text = ", ".join(f"CAST({_q(c)} AS VARCHAR) AS {_q(c)}" for c in contract.column_names)
        key = _q(contract.primary_key)
        rejected = con.execute(
            f"""
            SELECT * EXCLUDE ({SHEET_INDEX}) FROM (
              SELECT {names}, {REASON}, ? AS {SOURCE_FILE}, {POSITION} FROM bad
              UNION ALL
              SELECT {as_text}, 'duplicate {contract.primary_key} ' || {key}
                || ': superseded by ' || _winner, ?, {POSITION} FROM superseded
            ) ORDER BY {SHEET_INDEX}, {SOURCE_ROW}
            """,
            [source_file, source_file],
        ).to_arrow_table()
    finally:
        con.close()
    if malformed:
        rejected = pa.concat_tables(
            [rejected, _malformed_rows(contract, malformed, source_file).cast(rejected.schema)]
        )
    return ValidationResult(
        valid=valid.cast(contract.arrow_schema),
        rejected=rejected,
        rows_read=rows_read + len(malformed),
        sheets=sheets,
        extra_columns=extra_columns,
    )


def _malformed_rows(
    contract: DatasetContract, rows: list[tuple[str | None, int, str]], source_file: str
) -> pa.Table:
    """Rows the reader could not split into fields (CSV): rejected with the reader's reason."""
    columns: dict[str, pa.Array] = {
        c: pa.nulls(len(rows), pa.string()) for c in contract.column_names
    }
    columns[REASON] = pa.array([r for _, _, r in rows], pa.string())
    columns[SOURCE_FILE] = pa.array([source_file] * len(rows), pa.string())
    columns[SOURCE_SHEET] = pa.array([s for s, _, _ in rows], pa.string())
    columns[SOURCE_ROW] = pa.array([line for _, line, _ in rows], pa.int64())
    return pa.table(columns)
