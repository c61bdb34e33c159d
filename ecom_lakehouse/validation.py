"""Validation: header against the contract, then every row typed and checked, in one SQL pass.

The rules are the contract's; the SQL that applies them is generated here and run by DuckDB
over the Arrow tables the readers made (no copies into Python objects).

Header tolerance: names are compared case-insensitively with surrounding white space ignored;
column order is free; extra columns are ignored (and reported); every contract column must be
present exactly once. Anything else rejects the whole file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import duckdb
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


def _aligned(contract: DatasetContract, parts: list[RawPart]) -> tuple[pa.Table, list[str]]:
    """All parts stacked, columns in contract order (raw text), plus source position columns."""
    tables, extra_columns = [], []
    for index, part in enumerate(parts):
        where = f" (sheet {part.sheet!r})" if part.sheet is not None else ""
        try:
            positions, extra = header_mapping(contract, part.header)
        except InvalidSchema as exc:
            raise InvalidSchema(f"{exc}{where}") from None
        extra_columns += [e for e in extra if e not in extra_columns]
        table = part.table
        columns = [table.column(f"c{p}") for p in positions]
        n = table.num_rows
        columns += [
            pa.array([part.sheet] * n, pa.string()),
            pa.array([index] * n, pa.int32()),
            table.column(SOURCE_ROW),
        ]
        names = [*(RAW_PREFIX + c for c in contract.column_names), SOURCE_SHEET, SHEET_INDEX]
        tables.append(pa.table(columns, names=[*names, SOURCE_ROW]))
    return pa.concat_tables(tables), extra_columns


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


def validation_sql(contract: DatasetContract) -> str:
    """One query over ``raw`` returning the typed columns, a reason (NULL when the row is good),
    ``_keep`` (the row that survives de-duplication of its key) and the row's position. The raw
    text is not carried along: rejected rows fetch theirs from ``raw`` by position, which keeps
    the working set to the typed values."""
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
    key = _q(contract.primary_key)
    order = ", ".join(f"{_q(c)} DESC NULLS LAST" for c in contract.dedup_order)
    order = f"{order + ', ' if order else ''}{SHEET_INDEX} DESC, {SOURCE_ROW} DESC"
    window = f"PARTITION BY ({REASON} IS NULL), {key} ORDER BY {order}"
    return f"""
WITH typed AS (
  SELECT
  {typed},
  {raw_cols}, {SOURCE_SHEET}, {SHEET_INDEX}, {SOURCE_ROW}
  FROM raw
), checked AS (
  SELECT *, NULLIF(concat_ws('; ', {", ".join(checks)}), '') AS {REASON} FROM typed
)
SELECT {", ".join(_q(c) for c in contract.column_names)}, {REASON},
  {SOURCE_SHEET}, {SHEET_INDEX}, {SOURCE_ROW},
  {REASON} IS NULL AND row_number() OVER ({window}) = 1 AS _keep,
  first_value(coalesce({SOURCE_SHEET} || ' row ', 'row ') || {SOURCE_ROW})
    OVER ({window}) AS _winner
FROM checked
"""


def validate(contract: DatasetContract, parts: list[RawPart], source_file: str) -> ValidationResult:
    raw, extra_columns = _aligned(contract, parts)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # text timestamps without a zone are UTC
        # Outputs are ordered explicitly; not keeping insertion order saves memory.
        con.execute("SET preserve_insertion_order = false")
        con.register("raw", raw)
        con.execute(f"CREATE TEMP TABLE checked AS {validation_sql(contract)}")
        valid = con.execute(
            f"SELECT {', '.join(_q(c) for c in contract.column_names)} FROM checked WHERE _keep"
            f" ORDER BY {SHEET_INDEX}, {SOURCE_ROW}"
        ).to_arrow_table()
        key = _q(contract.primary_key)
        raw_text = ", ".join(f"r.{_q(RAW_PREFIX + c)} AS {_q(c)}" for c in contract.column_names)
        rejected = con.execute(
            f"""
            SELECT {raw_text},
              coalesce(c.{REASON}, 'duplicate {contract.primary_key} ' || c.{key}
                || ': superseded by ' || c._winner) AS {REASON},
              ? AS {SOURCE_FILE}, c.{SOURCE_SHEET}, c.{SOURCE_ROW}
            FROM checked c JOIN raw r
              ON r.{SHEET_INDEX} = c.{SHEET_INDEX} AND r.{SOURCE_ROW} = c.{SOURCE_ROW}
            WHERE NOT c._keep
            ORDER BY c.{SHEET_INDEX}, c.{SOURCE_ROW}
            """,
            [source_file],
        ).to_arrow_table()
    finally:
        con.close()
    malformed = _malformed_rows(contract, parts, source_file)
    if malformed.num_rows:
        rejected = pa.concat_tables([rejected, malformed.cast(rejected.schema)])
    return ValidationResult(
        valid=valid.cast(contract.arrow_schema),
        rejected=rejected,
        rows_read=raw.num_rows + malformed.num_rows,
        sheets=[p.sheet for p in parts if p.sheet is not None],
        extra_columns=extra_columns,
    )


def _malformed_rows(contract: DatasetContract, parts: list[RawPart], source_file: str) -> pa.Table:
    """Rows the reader could not split into fields (CSV): rejected with the reader's reason."""
    rows = [(part.sheet, line, reason) for part in parts for line, reason in part.malformed]
    columns: dict[str, pa.Array] = {
        c: pa.nulls(len(rows), pa.string()) for c in contract.column_names
    }
    columns[REASON] = pa.array([r for _, _, r in rows], pa.string())
    columns[SOURCE_FILE] = pa.array([source_file] * len(rows), pa.string())
    columns[SOURCE_SHEET] = pa.array([s for s, _, _ in rows], pa.string())
    columns[SOURCE_ROW] = pa.array([line for _, line, _ in rows], pa.int64())
    return pa.table(columns)
