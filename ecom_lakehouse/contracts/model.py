"""The contract model: what a dataset contract says (columns, types, key, rules, foreign keys).

Readers, validation, the Delta engine, the catalog, asset checks and the UI's column metadata
are all driven from these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Protocol

import pyarrow as pa

# Logical type -> (DuckDB SQL type used to cast raw text, Arrow type stored in Delta, the
# Glue/Hive type Athena reads, which is also the Spark SQL type the Spark job casts to).
# Timestamps are UTC and timezone-aware so tables stay on Delta reader version 1.
LOGICAL_TYPES: dict[str, tuple[str, pa.DataType, str]] = {
    "bigint": ("BIGINT", pa.int64(), "bigint"),
    "int": ("INTEGER", pa.int32(), "int"),
    "boolean": ("BOOLEAN", pa.bool_(), "boolean"),
    "double": ("DOUBLE", pa.float64(), "double"),
    "decimal(12,2)": ("DECIMAL(12,2)", pa.decimal128(12, 2), "decimal(12,2)"),
    "decimal(18,2)": ("DECIMAL(18,2)", pa.decimal128(18, 2), "decimal(18,2)"),
    "string": ("VARCHAR", pa.string(), "string"),
    "date": ("DATE", pa.date32(), "date"),
    "timestamp": ("TIMESTAMPTZ", pa.timestamp("us", tz="UTC"), "timestamp"),
}


# The formats a dataset may accept (a reader each).
FORMATS = ("csv", "xlsx", "jsonl", "parquet")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = True
    description: str = ""
    # A derived column: a SQL expression over the other columns (typed, timestamps in UTC),
    # computed by validation and never read from a file (a file's column of that name is one
    # the contract does not know).
    derived: str | None = None
    # A KPI column's sources: the dataset columns its value is computed from (``dataset.column``),
    # what the UI's column lineage shows.
    lineage: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # an unknown type is the contract's to report (``contract_problems``), naming itself
        if self.derived is not None and self.required:
            object.__setattr__(self, "required", False)  # computed, never missing from a file

    @property
    def sql_type(self) -> str:
        return LOGICAL_TYPES[self.type][0]

    @property
    def arrow_type(self) -> pa.DataType:
        return LOGICAL_TYPES[self.type][1]

    @property
    def glue_type(self) -> str:
        return LOGICAL_TYPES[self.type][2]

    def arrow_field(self) -> pa.Field:
        # Every column is nullable in storage: NOT NULL is enforced by validation and checked by
        # asset checks, which keeps the Delta protocol at its most widely readable version.
        return pa.field(
            self.name, self.arrow_type, nullable=True, metadata={"comment": self.description}
        )


# Where each row of a table came from, like Auto Loader's file metadata: an analyst answers
# "which file gave me this row?" in SQL. Names start with _ so no contract column can clash.
# The loader fills them, no file does (so not `required`: rows written before a table had them
# read NULL there).
SOURCE_FILE, SOURCE_VERSION, LOADED_AT = "_source_file", "_source_version", "_loaded_at"
AUDIT_COLUMNS = (
    Column(
        SOURCE_FILE,
        "string",
        required=False,
        description="The file the row came from (its path under raw/).",
    ),
    Column(
        SOURCE_VERSION,
        "bigint",
        required=False,
        description="The upload's version: when it landed in raw/, in ms since 1970 (UTC).",
    ),
    Column(
        LOADED_AT,
        "timestamp",
        required=False,
        description="When the row was written to the table (UTC).",
    ),
)


# Values a file carried under columns the contract does not know, kept per row instead of being
# dropped (like Auto Loader's rescued data column): JSON text, {column: value as the file shows
# it}; NULL when the row had none. Found in SQL with json_extract_string(_rescued_data, '$.x').
RESCUED_DATA = "_rescued_data"
RESCUED_COLUMN = Column(
    RESCUED_DATA,
    "string",
    required=False,
    description="The row's values under columns the contract does not know, as JSON text "
    "({column: value as the file shows it}); NULL when it had none.",
)


@dataclass(frozen=True)
class Rule:
    """A business rule: a SQL boolean expression over the typed columns, written in the SQL
    that DuckDB (validation) and Spark (the Spark job) both read, with timestamps in UTC.
    ``to_date(ts)`` gives a timestamp's UTC day in both (validation defines it for DuckDB,
    faster than its ``CAST(ts AS DATE)``).

    A row breaks the rule when the expression is false; NULL counts as passing, because
    missing values are the job of the `required` flag, not of every rule.
    """

    name: str
    sql: str


Columns = str | tuple[str, ...]  # one column's name, or several (a composite key)


def column_tuple(columns: Columns) -> tuple[str, ...]:
    return (columns,) if isinstance(columns, str) else tuple(columns)


@dataclass(frozen=True)
class ForeignKey:
    """Every row's ``columns`` (one, or several together) name a row of the dataset
    ``references`` by its ``referenced_columns`` (usually its primary key), in the same order.
    A row with a NULL in any of the columns references nothing and is not checked."""

    columns: Columns
    references: str  # dataset name
    referenced_columns: Columns

    @property
    def column_names(self) -> tuple[str, ...]:
        return column_tuple(self.columns)

    @property
    def referenced_names(self) -> tuple[str, ...]:
        return column_tuple(self.referenced_columns)

    @property
    def name(self) -> str:
        """What its check is called: ``<columns>_references_<dataset>``."""
        return f"{'_'.join(self.column_names)}_references_{self.references}"


@dataclass(frozen=True)
class Maintenance:
    """How a table is kept (``core/tables/maintenance.py``): small files compacted per partition
    toward ``target_file_mb``; with ``z_order_by``, rewritten so that files hold disjoint
    ranges of those columns (what readers' and the merge's file skipping use: worth it where
    rows do not arrive clustered by them, as a product table's keys). VACUUM's retention is
    the table's ``delta.deletedFileRetentionDuration`` (7 days unless the table says)."""

    z_order_by: tuple[str, ...] = ()
    target_file_mb: int = 128


@dataclass(frozen=True)
class DatasetContract:
    name: str
    raw_folder: str
    description: str
    columns: tuple[Column, ...]
    # One column, or several that together identify a row (order lines keyed by order and
    # product): one row per key in the whole table.
    primary_key: Columns
    formats: tuple[str, ...] = FORMATS
    # Which version of a key is the newest, like Delta Live Tables' SEQUENCE BY: the row with
    # the greatest value of these columns wins (NULL is oldest), within a file and across
    # files, whatever order files arrive in. Ties go to the later upload (``_source_version``,
    # then the greater ``_source_file``) and, within one file, to the later sheet, then row.
    sequence_by: tuple[str, ...] = ()
    partition_by: str | None = None
    rules: tuple[Rule, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = field(default=())
    maintenance: Maintenance = Maintenance()
    # How often new data is expected: the table's freshness check fails (and alerts) when its
    # last load is older than this. None: no expectation.
    freshness: timedelta | None = None

    def __post_init__(self) -> None:
        for problem in contract_problems(self):
            raise ContractError(f"contract {self.name!r}: {problem}")

    @cached_property
    def key_columns(self) -> tuple[str, ...]:
        """The primary key's columns (one or several)."""
        return column_tuple(self.primary_key)

    @property
    def key_label(self) -> str:
        """The key as a person reads it: ``order_id``, or ``(order_id, product_id)``."""
        key = self.key_columns
        return key[0] if len(key) == 1 else f"({', '.join(key)})"

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def source_columns(self) -> tuple[Column, ...]:
        """The columns a file carries (all but the derived ones)."""
        return tuple(c for c in self.columns if c.derived is None)

    @cached_property
    def source_column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.source_columns)

    @cached_property
    def carried_column_names(self) -> tuple[str, ...]:
        """What a row of a file is kept as, loaded or rejected: the columns the file carries
        and the values under the others (``_rescued_data``)."""
        return (*self.source_column_names, RESCUED_DATA)

    @cached_property
    def validated_columns(self) -> tuple[Column, ...]:
        """What validation gives per row: the contract's columns, typed, and the rescued data."""
        return (*self.columns, RESCUED_COLUMN)

    @cached_property
    def validated_column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.validated_columns)

    @cached_property
    def arrow_schema(self) -> pa.Schema:
        """The validated columns as Arrow."""
        return pa.schema([c.arrow_field() for c in self.validated_columns])

    @cached_property
    def table_columns(self) -> tuple[Column, ...]:
        """The Delta table's columns: the validated ones, then the audit columns."""
        return (*self.validated_columns, *AUDIT_COLUMNS)

    @cached_property
    def table_schema(self) -> pa.Schema:
        return pa.schema([c.arrow_field() for c in self.table_columns])

    def column(self, name: str) -> Column:
        found = next((c for c in self.columns if c.name == name), None)
        if found is None:
            raise KeyError(f"{self.name} has no column {name!r}")
        return found


class ContractError(ValueError):
    """A contract that cannot work: one line naming the contract and the field."""


def contract_problems(contract: DatasetContract) -> list[str]:
    """What is wrong with a contract, field by field (empty: it can work)."""
    return [
        *_naming_problems(contract),
        *_column_problems(contract),
        *_key_problems(contract),
        *_reference_problems(contract),
    ]


def _naming_problems(contract: DatasetContract) -> list[str]:
    problems = []
    if not contract.name.isidentifier() or contract.name != contract.name.lower():
        problems.append(f"name must be a lower-case identifier (a table), not {contract.name!r}")
    folder = contract.raw_folder
    if not folder or "/" in folder or folder[0] in "._":
        problems.append(f"raw_folder must be one folder name, not {folder!r}")
    odd = [f for f in contract.formats if f not in FORMATS]
    if odd or not contract.formats:
        problems.append(f"formats: {odd or 'none'}; the readers take {list(FORMATS)}")
    if contract.freshness is not None and contract.freshness.total_seconds() <= 0:
        problems.append(f"freshness must be positive (or None), not {contract.freshness}")
    rules = [r.name for r in contract.rules]
    if len(set(rules)) != len(rules):
        problems.append(f"rules: duplicate rule names {rules}")
    return problems


def _column_problems(contract: DatasetContract) -> list[str]:
    names = [c.name for c in contract.columns]
    problems = [] if names else ["columns: a contract needs at least one column"]
    problems += column_type_problems(contract.columns)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        problems.append(f"columns: duplicate column names {duplicated}")
    reserved = [n for n in names if n.startswith("_")]
    if reserved:
        problems.append(f"columns: names starting with _ are reserved {reserved}")
    return problems


def _unknown(contract: DatasetContract, field_name: str, columns: tuple[str, ...]) -> list[str]:
    known = {c.name for c in contract.columns}
    missing = [c for c in columns if c not in known]
    return [f"{field_name} names unknown column(s) {missing}"] if missing else []


def _key_problems(contract: DatasetContract) -> list[str]:
    key = column_tuple(contract.primary_key)
    problems = _unknown(contract, "primary_key", key)
    if not key:
        problems.append("primary_key: at least one column")
    elif len(set(key)) != len(key):
        problems.append(f"primary_key repeats a column {list(key)}")
    columns = {c.name: c for c in contract.columns}
    for name in (n for n in key if n in columns):
        if columns[name].derived is not None:
            problems.append(f"primary_key: {name} is a derived column; a key must be read")
        elif not columns[name].required:
            problems.append(f"primary_key: {name} must be required (a row needs its key)")
    return problems


def _reference_problems(contract: DatasetContract) -> list[str]:
    problems = [
        *_unknown(contract, "sequence_by", contract.sequence_by),
        *_unknown(contract, "maintenance.z_order_by", contract.maintenance.z_order_by),
    ]
    if contract.partition_by is not None:
        problems += _unknown(contract, "partition_by", (contract.partition_by,))
    for fk in contract.foreign_keys:
        problems += _unknown(contract, f"foreign key {fk.name}", fk.column_names)
        if len(fk.column_names) != len(fk.referenced_names) or not fk.column_names:
            problems.append(
                f"foreign key {fk.name}: {len(fk.column_names)} column(s) reference "
                f"{len(fk.referenced_names)}; give as many on each side"
            )
    return problems


def column_type_problems(columns: tuple[Column, ...]) -> list[str]:
    return [
        f"columns: {c.name} has unknown type {c.type!r} (types: {', '.join(LOGICAL_TYPES)})"
        for c in columns
        if c.type not in LOGICAL_TYPES
    ]


class TableSpec(Protocol):
    """What the catalog needs of any table the lakehouse writes (a dataset's or a KPI's)."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def table_columns(self) -> tuple[Column, ...]: ...

    @property
    def partition_by(self) -> str | None: ...

    @property
    def maintenance(self) -> Maintenance: ...


COMPUTED_AT = "_computed_at"


@dataclass(frozen=True)
class KpiInput:
    """A table a KPI is computed from, and how its changed rows map to the KPI's dates: SQL
    over ``{changed}`` (the rows the input's change feed reports since the KPI's last run,
    before and after the change) returning one column of dates. Other tables may be named
    (``{thelook_orders}``)."""

    dataset: str
    touched_dates: str


@dataclass(frozen=True)
class KpiCheck:
    """An asset check on a KPI table: SQL returning the number of offending rows, over
    ``{kpi}``, the input tables and ``{dates}`` (the dates just recomputed, column ``d``)."""

    name: str
    description: str
    sql: str


@dataclass(frozen=True)
class KpiTable:
    """A table of KPIs, recomputed by date with SQL over the dataset tables.

    ``sql`` gives the KPI rows of the dates in ``{dates}`` (a relation with one column, ``d``);
    tables are placeholders (``{thelook_orders}``) the engine resolves. It is written in the SQL
    DuckDB and Athena (Trino) both read. ``dates`` gives every date the inputs hold (a full
    recompute)."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    date_column: str
    sql: str
    dates: str
    inputs: tuple[KpiInput, ...]
    rate_columns: tuple[str, ...] = ()
    checks: tuple[KpiCheck, ...] = ()
    partition_by: str | None = None  # small tables: one file, no partitions
    maintenance: Maintenance = Maintenance()

    def __post_init__(self) -> None:
        names = {c.name for c in self.columns}
        declared = (*self.key, self.date_column, *self.rate_columns, *self.maintenance.z_order_by)
        unknown = [c for c in declared if c not in names]
        problems = column_type_problems(self.columns)
        if unknown:
            problems.append(f"unknown columns {unknown}")
        for problem in problems:
            raise ContractError(f"KPI table {self.name!r}: {problem}")

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def table_columns(self) -> tuple[Column, ...]:
        computed = Column(COMPUTED_AT, "timestamp", description="When the row was computed (UTC).")
        return (*self.columns, computed)

    @cached_property
    def table_schema(self) -> pa.Schema:
        return pa.schema([c.arrow_field() for c in self.table_columns])

    @property
    def value_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.column_names if c not in self.key)
