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

    def __post_init__(self) -> None:
        if self.type not in LOGICAL_TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")
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

    A row breaks the rule when the expression is false; NULL counts as passing, because
    missing values are the job of the `required` flag, not of every rule.
    """

    name: str
    sql: str


@dataclass(frozen=True)
class ForeignKey:
    column: str
    references: str  # dataset name
    referenced_column: str


@dataclass(frozen=True)
class Maintenance:
    """How a table is kept (``core/maintenance.py``): small files compacted per partition
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
    primary_key: str
    formats: tuple[str, ...] = ("csv", "xlsx", "jsonl", "parquet")
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
        names = self.column_names
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate column names")
        reserved = [n for n in names if n.startswith("_")]
        if reserved:
            raise ValueError(f"{self.name}: column names starting with _ are reserved: {reserved}")
        referenced = [
            self.primary_key,
            *self.sequence_by,
            *(fk.column for fk in self.foreign_keys),
            *self.maintenance.z_order_by,
        ]
        if self.partition_by:
            referenced.append(self.partition_by)
        unknown = [c for c in referenced if c not in names]
        if unknown:
            raise ValueError(f"{self.name}: unknown columns {unknown}")

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
        return next(c for c in self.columns if c.name == name)


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
        if unknown:
            raise ValueError(f"{self.name}: unknown columns {unknown}")

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
