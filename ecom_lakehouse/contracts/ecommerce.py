"""The seed datasets: products, orders and order items (the lab5 files' family)."""

from datetime import timedelta

from ecom_lakehouse.contracts.model import Column, DatasetContract, ForeignKey, Maintenance, Rule

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
    Rule("date_matches_order_timestamp", "date = to_date(order_timestamp)"),
)

PRODUCTS = DatasetContract(
    name="products",
    raw_folder="products",
    freshness=timedelta(days=7),
    description="Product catalogue: one row per product.",
    columns=(
        Column("product_id", "bigint", description="Product identifier (key)."),
        Column("department_id", "bigint", description="Department identifier."),
        Column("department", "string", description="Department name."),
        Column("product_name", "string", description="Product name."),
    ),
    primary_key="product_id",
    rules=(Rule("product_id_positive", "product_id > 0"),),
    # unpartitioned, updated anywhere: files with disjoint key ranges let a merge skip files
    maintenance=Maintenance(z_order_by=("product_id",)),
)

ORDERS = DatasetContract(
    name="orders",
    raw_folder="orders",
    freshness=timedelta(days=1),
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
    sequence_by=("order_timestamp",),
    partition_by="date",
    rules=(Rule("total_amount_positive", "total_amount > 0"), *ORDER_TIME_RULES),
)

ORDER_ITEMS = DatasetContract(
    name="order_items",
    raw_folder="order-items",
    freshness=timedelta(days=1),
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
    sequence_by=("order_timestamp",),
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

# The family, in load order (a dataset after those its foreign keys name).
DATASETS = (PRODUCTS, ORDERS, ORDER_ITEMS)
