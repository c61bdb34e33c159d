"""Dataset contracts: every fact about a dataset, declared once, as data.

Readers, validation, the Delta engine, the catalog, asset checks and the UI's column metadata
are all driven from these objects. Adding a dataset means adding a contract here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

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

    def __post_init__(self) -> None:
        if self.type not in LOGICAL_TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")

    @property
    def sql_type(self) -> str:
        return LOGICAL_TYPES[self.type][0]

    @property
    def arrow_type(self) -> pa.DataType:
        return LOGICAL_TYPES[self.type][1]

    @property
    def glue_type(self) -> str:
        return LOGICAL_TYPES[self.type][2]


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
class DatasetContract:
    name: str
    raw_folder: str
    description: str
    columns: tuple[Column, ...]
    primary_key: str
    formats: tuple[str, ...] = ("csv", "xlsx", "jsonl", "parquet")
    # Duplicate keys within one file: the row with the greatest value of these columns wins,
    # ties broken by position in the file (sheet order, then row: the last one wins).
    dedup_order: tuple[str, ...] = ()
    partition_by: str | None = None
    rules: tuple[Rule, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = field(default=())

    def __post_init__(self) -> None:
        names = self.column_names
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate column names")
        referenced = [self.primary_key, *self.dedup_order, *(fk.column for fk in self.foreign_keys)]
        if self.partition_by:
            referenced.append(self.partition_by)
        unknown = [c for c in referenced if c not in names]
        if unknown:
            raise ValueError(f"{self.name}: unknown columns {unknown}")

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def arrow_schema(self) -> pa.Schema:
        # Every column is nullable in storage: NOT NULL is enforced by validation and checked by
        # asset checks, which keeps the Delta protocol at its most widely readable version.
        return pa.schema(
            [
                pa.field(c.name, c.arrow_type, nullable=True, metadata={"comment": c.description})
                for c in self.columns
            ]
        )

    @property
    def value_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.column_names if c != self.primary_key)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


# When an order was placed, as both order datasets carry it, and the rules that keep it sane
# (timestamps outside the window are almost always unit or typing mistakes).
ORDER_TIME_COLUMNS = (
    Column("order_timestamp", "timestamp", description="When the order was placed (UTC)."),
    Column("date", "date", description="Order date (UTC); the partition column."),
)
ORDER_TIME_RULES = (
    Rule(
        "order_timestamp_in_range",
        "order_timestamp BETWEEN TIMESTAMP '2000-01-01 00:00:00' AND now() + INTERVAL 1 DAY",
    ),
    Rule("date_matches_order_timestamp", "date = CAST(order_timestamp AS DATE)"),
)

PRODUCTS = DatasetContract(
    name="products",
    raw_folder="products",
    description="Product catalogue: one row per product.",
    columns=(
        Column("product_id", "bigint", description="Product identifier (key)."),
        Column("department_id", "bigint", description="Department identifier."),
        Column("department", "string", description="Department name."),
        Column("product_name", "string", description="Product name."),
    ),
    primary_key="product_id",
    rules=(Rule("product_id_positive", "product_id > 0"),),
)

ORDERS = DatasetContract(
    name="orders",
    raw_folder="orders",
    description="Orders: one row per order, partitioned by order date.",
    columns=(
        Column("order_num", "bigint", description="Order number within the day (repeats)."),
        Column("order_id", "bigint", description="Order identifier (key)."),
        Column("user_id", "bigint", description="Customer identifier."),
        ORDER_TIME_COLUMNS[0],
        Column("total_amount", "decimal(12,2)", description="Order total."),
        ORDER_TIME_COLUMNS[1],
    ),
    primary_key="order_id",
    dedup_order=("order_timestamp",),
    partition_by="date",
    rules=(Rule("total_amount_positive", "total_amount > 0"), *ORDER_TIME_RULES),
)

ORDER_ITEMS = DatasetContract(
    name="order_items",
    raw_folder="order-items",
    description="Order lines: one row per product in an order, partitioned by order date.",
    columns=(
        Column("id", "bigint", description="Order line identifier (key)."),
        Column("order_id", "bigint", description="The order this line belongs to."),
        Column("user_id", "bigint", description="Customer identifier."),
        Column(
            "days_since_prior_order",
            "int",
            required=False,
            description="Days since the customer's previous order; empty for a first order.",
        ),
        Column("product_id", "bigint", description="The product ordered."),
        Column("add_to_cart_order", "int", description="Position of the line in the cart."),
        Column("reordered", "int", description="1 when the customer ordered it before."),
        *ORDER_TIME_COLUMNS,
    ),
    primary_key="id",
    dedup_order=("order_timestamp",),
    partition_by="date",
    rules=(
        Rule("add_to_cart_order_positive", "add_to_cart_order > 0"),
        Rule("reordered_is_flag", "reordered IN (0, 1)"),
        Rule("days_since_prior_order_not_negative", "days_since_prior_order >= 0"),
        *ORDER_TIME_RULES,
    ),
    foreign_keys=(
        ForeignKey("order_id", "orders", "order_id"),
        ForeignKey("product_id", "products", "product_id"),
    ),
)

# Declaration order is load order: a dataset comes after the datasets its foreign keys name.
CONTRACTS: dict[str, DatasetContract] = {c.name: c for c in (PRODUCTS, ORDERS, ORDER_ITEMS)}


def contract_for_raw_folder(folder: str) -> DatasetContract | None:
    return next((c for c in CONTRACTS.values() if c.raw_folder == folder), None)


def load_rank(dataset: str) -> int:
    return list(CONTRACTS).index(dataset)
