"""KPI tables: business figures by day, computed with SQL from the dataset tables.

Definitions (the README repeats them):

- An item belongs to the day of its **order** (the UTC date the order was placed), whatever
  its own timestamps; an item whose order is not loaded (yet) belongs to no day.
- A **sold** item is one whose own status is neither cancelled nor returned (statuses compared
  case-insensitively).
- A day without orders has no row; a day with orders but nothing sold has a revenue of 0.
- Rates are numbers from 0 to 1; money is ``decimal(18,2)``; an average is rounded to the
  cent, half up; an average order value with no sold order is 0.
- An item whose product is not loaded counts under the category or department ``(unknown)``.

The SQL is the dialect DuckDB and Athena (Trino) share: ``CAST``, ``CASE``, ``count(DISTINCT)``,
``VALUES``; no engine-only functions.
"""

from ecom_lakehouse.contracts.model import Column, KpiCheck, KpiInput, KpiTable

NOT_SOLD = "('cancelled', 'returned')"


def _count(name: str, description: str, *lineage: str) -> Column:
    return Column(name, "bigint", description=description, lineage=lineage)


def _money(name: str, description: str, *lineage: str) -> Column:
    return Column(name, "decimal(18,2)", description=description, lineage=lineage)


def _rate(name: str, description: str, *lineage: str) -> Column:
    return Column(name, "double", description=description, lineage=lineage)


def _key(name: str, type_: str, description: str, *lineage: str) -> Column:
    return Column(name, type_, description=description, lineage=lineage)


# The day an item or an order belongs to (its order's), in each family.
THELOOK_DAY, SEED_DAY = "thelook_orders.created_date", "orders.date"
THELOOK_SOLD = ("thelook_order_items.status", "thelook_order_items.order_id", THELOOK_DAY)


def _one_row_per_key(key: tuple[str, ...]) -> KpiCheck:
    columns = ", ".join(key)
    return KpiCheck(
        f"one_row_per_{'_and_'.join(key)}",
        f"No two rows share a {columns}, and none has a NULL in it.",
        f"SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT {columns} FROM {{kpi}}) k)"
        f" + (SELECT count(*) FROM {{kpi}} WHERE {' OR '.join(f'{c} IS NULL' for c in key)})"
        " FROM {kpi}",
    )


# -- TheLook --------------------------------------------------------------------------------

THELOOK_ORDER_DATES = "SELECT DISTINCT created_date AS d FROM {thelook_orders}"
# Changed orders touch their day (before and after a change); changed items touch their
# order's day; a changed product touches the days of the orders that have it.
ORDERS_TOUCH = KpiInput("thelook_orders", "SELECT created_date AS d FROM {changed}")
ITEMS_TOUCH = KpiInput(
    "thelook_order_items",
    "SELECT o.created_date AS d FROM {changed} c"
    " JOIN {thelook_orders} o ON o.order_id = c.order_id",
)
PRODUCTS_TOUCH = KpiInput(
    "thelook_products",
    "SELECT o.created_date AS d FROM {changed} c"
    " JOIN {thelook_order_items} i ON i.product_id = c.id"
    " JOIN {thelook_orders} o ON o.order_id = i.order_id",
)

ORDER_KPIS_DAILY = KpiTable(
    name="order_kpis_daily",
    description="TheLook's orders by day: orders, revenue and items sold, returns, customers.",
    columns=(
        _key("order_date", "date", "The UTC date the orders were placed (key).", THELOOK_DAY),
        _count("total_orders", "Orders placed that day.", "thelook_orders.order_id", THELOOK_DAY),
        _money(
            "total_revenue",
            "Sum of the sale price of those orders' sold items.",
            "thelook_order_items.sale_price",
            *THELOOK_SOLD,
        ),
        _count("total_items_sold", "Those orders' sold items.", *THELOOK_SOLD),
        _rate(
            "return_rate",
            "Orders of the day whose status is returned, over all of them.",
            "thelook_orders.status",
            THELOOK_DAY,
        ),
        _count(
            "unique_customers",
            "Distinct customers who ordered that day.",
            "thelook_orders.user_id",
            THELOOK_DAY,
        ),
    ),
    key=("order_date",),
    date_column="order_date",
    rate_columns=("return_rate",),
    dates=THELOOK_ORDER_DATES,
    inputs=(ORDERS_TOUCH, ITEMS_TOUCH),
    sql=f"""
WITH days AS (SELECT d FROM {{dates}}),
orders AS (
  SELECT order_id, user_id, lower(status) AS status, created_date AS order_date
  FROM {{thelook_orders}} WHERE created_date IN (SELECT d FROM days)
),
per_day AS (
  SELECT order_date, count(*) AS total_orders,
    sum(CASE WHEN status = 'returned' THEN 1 ELSE 0 END) AS returned_orders,
    count(DISTINCT user_id) AS unique_customers
  FROM orders GROUP BY order_date
),
sold AS (
  SELECT o.order_date, sum(i.sale_price) AS revenue, count(*) AS items
  FROM {{thelook_order_items}} i JOIN orders o ON o.order_id = i.order_id
  WHERE lower(i.status) NOT IN {NOT_SOLD}
  GROUP BY o.order_date
)
SELECT p.order_date,
  CAST(p.total_orders AS BIGINT) AS total_orders,
  CAST(coalesce(s.revenue, 0) AS DECIMAL(18, 2)) AS total_revenue,
  CAST(coalesce(s.items, 0) AS BIGINT) AS total_items_sold,
  CAST(p.returned_orders AS DOUBLE) / p.total_orders AS return_rate,
  CAST(p.unique_customers AS BIGINT) AS unique_customers
FROM per_day p LEFT JOIN sold s ON s.order_date = p.order_date
""",
    checks=(
        _one_row_per_key(("order_date",)),
        KpiCheck(
            "revenue_reconciles_with_the_items",
            "For the days just recomputed, total_revenue equals the sale prices of the sold "
            "items of the day's orders, summed from the tables themselves.",
            f"""
SELECT count(*) FROM (SELECT order_date, total_revenue FROM {{kpi}}
                      WHERE order_date IN (SELECT d FROM {{dates}})) k
FULL OUTER JOIN (
  SELECT o.created_date AS order_date, sum(i.sale_price) AS revenue
  FROM {{thelook_order_items}} i JOIN {{thelook_orders}} o ON o.order_id = i.order_id
  WHERE lower(i.status) NOT IN {NOT_SOLD} AND o.created_date IN (SELECT d FROM {{dates}})
  GROUP BY o.created_date
) r ON r.order_date = k.order_date
WHERE coalesce(k.total_revenue, 0) <> coalesce(r.revenue, 0)
""",
        ),
    ),
)

CATEGORY_KPIS = KpiTable(
    name="category_kpis",
    description="TheLook's product categories by day: revenue, order value and returns.",
    columns=(
        _key("category", "string", "Product category (key).", "thelook_products.category"),
        _key("order_date", "date", "The UTC date the orders were placed (key).", THELOOK_DAY),
        _money(
            "daily_revenue",
            "Sum of the sale price of the category's sold items that day.",
            "thelook_order_items.sale_price",
            "thelook_products.category",
            *THELOOK_SOLD,
        ),
        _money(
            "avg_order_value",
            "daily_revenue over the distinct orders of those sold items.",
            "thelook_order_items.sale_price",
            "thelook_products.category",
            *THELOOK_SOLD,
        ),
        _rate(
            "avg_return_rate",
            "The category's returned items over all its items that day.",
            "thelook_order_items.status",
            "thelook_products.category",
            THELOOK_DAY,
        ),
    ),
    key=("category", "order_date"),
    date_column="order_date",
    rate_columns=("avg_return_rate",),
    dates=THELOOK_ORDER_DATES,
    inputs=(ORDERS_TOUCH, ITEMS_TOUCH, PRODUCTS_TOUCH),
    sql=f"""
WITH days AS (SELECT d FROM {{dates}}),
items AS (
  SELECT coalesce(p.category, '(unknown)') AS category, o.created_date AS order_date,
    i.order_id, i.sale_price, lower(i.status) NOT IN {NOT_SOLD} AS sold,
    lower(i.status) = 'returned' AS returned
  FROM {{thelook_order_items}} i
  JOIN {{thelook_orders}} o ON o.order_id = i.order_id
  LEFT JOIN {{thelook_products}} p ON p.id = i.product_id
  WHERE o.created_date IN (SELECT d FROM days)
),
per_category AS (
  SELECT category, order_date,
    sum(CASE WHEN sold THEN sale_price END) AS revenue,
    count(DISTINCT CASE WHEN sold THEN order_id END) AS sold_orders,
    sum(CASE WHEN returned THEN 1 ELSE 0 END) AS returned_items,
    count(*) AS items
  FROM items GROUP BY category, order_date
)
SELECT category, order_date,
  CAST(coalesce(revenue, 0) AS DECIMAL(18, 2)) AS daily_revenue,
  -- to the cent, half up, in whole cents (the engines round doubles differently)
  CAST(coalesce(floor(CAST(2 * CAST(round(revenue * 100) AS BIGINT) + sold_orders AS DOUBLE)
    / (2 * NULLIF(sold_orders, 0))), 0) / 100 AS DECIMAL(18, 2)) AS avg_order_value,
  CAST(returned_items AS DOUBLE) / items AS avg_return_rate
FROM per_category
""",
    checks=(
        _one_row_per_key(("category", "order_date")),
        KpiCheck(
            "revenue_reconciles_with_the_items",
            "For the days just recomputed, the categories' revenue adds up to the sale prices "
            "of the day's sold items, summed from the tables themselves.",
            f"""
SELECT count(*) FROM (SELECT order_date, sum(daily_revenue) AS revenue FROM {{kpi}}
                      WHERE order_date IN (SELECT d FROM {{dates}}) GROUP BY order_date) k
FULL OUTER JOIN (
  SELECT o.created_date AS order_date, sum(i.sale_price) AS revenue
  FROM {{thelook_order_items}} i JOIN {{thelook_orders}} o ON o.order_id = i.order_id
  WHERE lower(i.status) NOT IN {NOT_SOLD} AND o.created_date IN (SELECT d FROM {{dates}})
  GROUP BY o.created_date
) r ON r.order_date = k.order_date
WHERE coalesce(k.revenue, 0) <> coalesce(r.revenue, 0)
""",
        ),
    ),
)

# -- the seed datasets ----------------------------------------------------------------------

SEED_ORDER_DATES = "SELECT DISTINCT date AS d FROM {orders}"
SEED_ORDERS_TOUCH = KpiInput("orders", "SELECT date AS d FROM {changed}")
SEED_ITEMS_TOUCH = KpiInput(
    "order_items",
    "SELECT o.date AS d FROM {changed} c JOIN {orders} o ON o.order_id = c.order_id",
)
SEED_PRODUCTS_TOUCH = KpiInput(
    "products",
    "SELECT o.date AS d FROM {changed} c JOIN {order_items} i ON i.product_id = c.product_id"
    " JOIN {orders} o ON o.order_id = i.order_id",
)

SALES_DAILY = KpiTable(
    name="sales_daily",
    description="Sales by day: orders, revenue, items, customers.",
    columns=(
        _key("date", "date", "The UTC date the orders were placed (key).", SEED_DAY),
        _count("orders", "Orders placed that day.", "orders.order_id", SEED_DAY),
        _money("revenue", "Sum of those orders' total_amount.", "orders.total_amount", SEED_DAY),
        _count("items", "Those orders' items.", "order_items.order_id", SEED_DAY),
        _count(
            "unique_customers",
            "Distinct customers who ordered that day.",
            "orders.user_id",
            SEED_DAY,
        ),
    ),
    key=("date",),
    date_column="date",
    dates=SEED_ORDER_DATES,
    inputs=(SEED_ORDERS_TOUCH, SEED_ITEMS_TOUCH),
    sql="""
WITH days AS (SELECT d FROM {dates}),
o AS (SELECT order_id, user_id, total_amount, date FROM {orders}
      WHERE date IN (SELECT d FROM days)),
per_day AS (
  SELECT date, count(*) AS orders, sum(total_amount) AS revenue,
    count(DISTINCT user_id) AS unique_customers
  FROM o GROUP BY date
),
items AS (
  SELECT o.date, count(*) AS items FROM {order_items} i JOIN o ON o.order_id = i.order_id
  GROUP BY o.date
)
SELECT p.date, CAST(p.orders AS BIGINT) AS orders,
  CAST(p.revenue AS DECIMAL(18, 2)) AS revenue,
  CAST(coalesce(i.items, 0) AS BIGINT) AS items,
  CAST(p.unique_customers AS BIGINT) AS unique_customers
FROM per_day p LEFT JOIN items i ON i.date = p.date
""",
    checks=(
        _one_row_per_key(("date",)),
        KpiCheck(
            "revenue_reconciles_with_the_orders",
            "For the days just recomputed, revenue equals the orders' total_amount, summed "
            "from the orders table itself.",
            """
SELECT count(*) FROM (SELECT date, revenue FROM {kpi}
                      WHERE date IN (SELECT d FROM {dates})) k
FULL OUTER JOIN (
  SELECT date, sum(total_amount) AS revenue FROM {orders}
  WHERE date IN (SELECT d FROM {dates}) GROUP BY date
) r ON r.date = k.date
WHERE coalesce(k.revenue, 0) <> coalesce(r.revenue, 0)
""",
        ),
    ),
)

DEPARTMENT_SALES_DAILY = KpiTable(
    name="department_sales_daily",
    description="Sales by department and day: items sold, orders, reorder rate.",
    columns=(
        _key("department", "string", "Product department (key).", "products.department"),
        _key("date", "date", "The UTC date the orders were placed (key).", SEED_DAY),
        _count(
            "items_sold",
            "The department's items in that day's orders.",
            "order_items.order_id",
            "products.department",
            SEED_DAY,
        ),
        _count(
            "orders",
            "Distinct orders with one of those items.",
            "order_items.order_id",
            "products.department",
            SEED_DAY,
        ),
        _rate(
            "reorder_rate",
            "Those items that the customer ordered before, over all of them.",
            "order_items.reordered",
            "products.department",
            SEED_DAY,
        ),
    ),
    key=("department", "date"),
    date_column="date",
    rate_columns=("reorder_rate",),
    dates=SEED_ORDER_DATES,
    inputs=(SEED_ORDERS_TOUCH, SEED_ITEMS_TOUCH, SEED_PRODUCTS_TOUCH),
    sql="""
WITH days AS (SELECT d FROM {dates}),
items AS (
  SELECT coalesce(p.department, '(unknown)') AS department, o.date, i.order_id, i.reordered
  FROM {order_items} i
  JOIN {orders} o ON o.order_id = i.order_id
  LEFT JOIN {products} p ON p.product_id = i.product_id
  WHERE o.date IN (SELECT d FROM days)
)
SELECT department, date, CAST(count(*) AS BIGINT) AS items_sold,
  CAST(count(DISTINCT order_id) AS BIGINT) AS orders,
  avg(CAST(reordered AS DOUBLE)) AS reorder_rate
FROM items GROUP BY department, date
""",
    checks=(
        _one_row_per_key(("department", "date")),
        KpiCheck(
            "items_reconcile_with_the_orders",
            "For the days just recomputed, the departments' items add up to the items of the "
            "day's orders, counted from the tables themselves.",
            """
SELECT count(*) FROM (SELECT date, sum(items_sold) AS items FROM {kpi}
                      WHERE date IN (SELECT d FROM {dates}) GROUP BY date) k
FULL OUTER JOIN (
  SELECT o.date, count(*) AS items
  FROM {order_items} i JOIN {orders} o ON o.order_id = i.order_id
  WHERE o.date IN (SELECT d FROM {dates}) GROUP BY o.date
) r ON r.date = k.date
WHERE coalesce(k.items, 0) <> coalesce(r.items, 0)
""",
        ),
    ),
)

KPIS: dict[str, KpiTable] = {
    k.name: k for k in (SALES_DAILY, DEPARTMENT_SALES_DAILY, ORDER_KPIS_DAILY, CATEGORY_KPIS)
}
