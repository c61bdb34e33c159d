"""TheLook e-commerce exports: orders, order items and products (BigQuery's public
``thelook_ecommerce`` dataset, as CSV).

Timestamps come as ``2025-09-12 01:11:58.000000 UTC``; an empty one is NULL. Statuses are
compared case-insensitively (the exports write ``Complete``, ``Cancelled``) and kept as written.
Prices are float32 values in the export (``9.9899997711181641``): the table keeps them to the
cent; ``cost`` carries real fractions of a cent and stays a double.
"""

from datetime import timedelta

from ecom_lakehouse.contracts.model import Column, DatasetContract, ForeignKey, Maintenance, Rule

ORDER_LIFECYCLE = (
    "pending",
    "processing",
    "shipped",
    "complete",
    "delivered",
    "cancelled",
    "returned",
)


def _status_rule(column: str = "status") -> Rule:
    allowed = ", ".join(f"'{s}'" for s in ORDER_LIFECYCLE)
    return Rule(f"{column}_in_order_lifecycle", f"lower({column}) IN ({allowed})")


def _created_date(what: str) -> Column:
    return Column(
        "created_date",
        "date",
        description=f"The UTC date the {what} was created; the partition column.",
        derived="to_date(created_at)",
    )


def _moments(*names: str) -> tuple[Column, ...]:
    return tuple(
        Column(n, "timestamp", required=False, description=f"When it was {n[:-3]} (UTC).")
        for n in names
    )


THELOOK_PRODUCTS = DatasetContract(
    name="thelook_products",
    raw_folder="thelook-products",
    freshness=timedelta(days=7),
    description="TheLook's product catalogue: one row per product.",
    columns=(
        Column("id", "bigint", description="Product identifier (key)."),
        Column("cost", "double", required=False, description="What the product costs the shop."),
        Column("category", "string", required=False, description="Product category."),
        Column("name", "string", description="Product name."),
        Column("brand", "string", description="Brand."),
        Column("retail_price", "decimal(12,2)", required=False, description="Retail price."),
        Column("department", "string", required=False, description="Department (Men, Women)."),
        Column("sku", "string", description="Stock keeping unit."),
        Column(
            "distribution_center_id",
            "bigint",
            required=False,
            description="The distribution center that ships it.",
        ),
    ),
    primary_key="id",
    rules=(
        Rule("cost_not_negative", "cost >= 0"),
        Rule("retail_price_not_negative", "retail_price >= 0"),
    ),
    maintenance=Maintenance(z_order_by=("id",)),  # as the seed products: see Maintenance
)

THELOOK_ORDERS = DatasetContract(
    name="thelook_orders",
    raw_folder="thelook-orders",
    freshness=timedelta(days=1),
    description="TheLook's orders: one row per order, partitioned by the UTC date it was placed.",
    columns=(
        Column("order_id", "bigint", description="Order identifier (key)."),
        Column("user_id", "bigint", description="Customer identifier."),
        Column("status", "string", description="Where the order is in its lifecycle."),
        Column("gender", "string", required=False, description="The customer's gender (F, M)."),
        Column("created_at", "timestamp", description="When the order was placed (UTC)."),
        *_moments("returned_at", "shipped_at", "delivered_at"),
        Column("num_of_item", "int", required=False, description="Items in the order."),
        _created_date("order"),
    ),
    primary_key="order_id",
    partition_by="created_date",
    rules=(_status_rule(), Rule("num_of_item_at_least_one", "num_of_item >= 1")),
)

THELOOK_ORDER_ITEMS = DatasetContract(
    name="thelook_order_items",
    raw_folder="thelook-order-items",
    freshness=timedelta(days=1),
    description=(
        "TheLook's order items: one row per item sold, partitioned by the UTC date it was "
        "created (an item belongs to its order's day in the KPIs)."
    ),
    columns=(
        Column("id", "bigint", description="Order item identifier (key)."),
        Column("order_id", "bigint", description="The order it belongs to."),
        Column("user_id", "bigint", description="Customer identifier."),
        Column("product_id", "bigint", description="The product."),
        Column("inventory_item_id", "bigint", required=False, description="The stock item."),
        Column("status", "string", description="Where the item is in the order lifecycle."),
        Column("created_at", "timestamp", required=False, description="When it was created (UTC)."),
        *_moments("shipped_at", "delivered_at", "returned_at"),
        Column("sale_price", "decimal(12,2)", required=False, description="What it sold for."),
        _created_date("item"),
    ),
    primary_key="id",
    partition_by="created_date",
    rules=(_status_rule(), Rule("sale_price_not_negative", "sale_price >= 0")),
    foreign_keys=(
        ForeignKey("order_id", "thelook_orders", "order_id"),
        ForeignKey("product_id", "thelook_products", "id"),
    ),
)

# The family, in load order (a dataset after those its foreign keys name).
DATASETS = (THELOOK_PRODUCTS, THELOOK_ORDERS, THELOOK_ORDER_ITEMS)
