"""Synthetic TheLook exports, laid out like ``raw/`` (repeatable by seed): products, orders and
order items as CSV, the way BigQuery exports them (``... UTC`` timestamps, capitalised
statuses, float32 prices, empty timestamps where an event has not happened)."""

from __future__ import annotations

import csv
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.generators import GeneratedFiles

CATEGORIES = {
    "Jeans": ("Men", 30, 180),
    "Dresses": ("Women", 25, 250),
    "Swim": ("Women", 15, 190),
    "Tops & Tees": ("Women", 8, 60),
    "Outerwear & Coats": ("Men", 60, 400),
    "Sweaters": ("Men", 20, 160),
    "Socks": ("Men", 4, 25),
    "Intimates": ("Women", 6, 70),
}
BRANDS = ("Levi's", "Calvin Klein", "Carhartt", "Columbia", "Hanes", "Speedo", "Gottex", "Nike")
# An order's status and how likely it is; its items mostly share it.
STATUSES = (("Complete", 0.3), ("Shipped", 0.25), ("Processing", 0.2), ("Cancelled", 0.15),
            ("Returned", 0.1))  # fmt: skip


def _stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f UTC") if moment else ""


def _price(value: float) -> str:
    """As the export writes them: float32 values printed in full (``9.9899997711181641``)."""
    return repr(float(np.float32(value)))


def _write(path: Path, dataset: str, rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CONTRACTS[dataset].source_column_names)
        writer.writerows(rows)


def generate(
    out_dir: Path,
    *,
    orders: int,
    products: int = 300,
    days: int = 30,
    start: date = date(2025, 4, 1),
    seed: int = 0,
    id_offset: int = 0,
) -> GeneratedFiles:
    """``id_offset`` is added to every key (products, orders, order items)."""
    rng = random.Random(seed)
    out_dir = Path(out_dir)
    prices: list[tuple[int, float]] = []
    product_rows: list[list[object]] = []
    for pid in range(id_offset + 1, id_offset + products + 1):
        category = rng.choice(list(CATEGORIES))
        department, low, high = CATEGORIES[category]
        retail, brand = round(rng.uniform(low, high), 2), rng.choice(BRANDS)
        prices.append((pid, retail))
        cost = round(retail * rng.uniform(0.35, 0.6), 6)
        sku = f"{rng.getrandbits(64):016X}"
        product_rows.append(
            [pid, cost, category, f"{brand} {category} {pid - id_offset}", brand, _price(retail),
             department, sku, rng.randint(1, 10)]
        )  # fmt: skip
    order_rows: list[list[object]] = []
    item_rows: list[list[object]] = []
    for n in range(orders):
        order_id, user_id = id_offset + 1000 + n, rng.randint(1, max(2, orders // 3))
        day = start + timedelta(days=n * days // max(orders, 1))
        placed = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(86_400)
        )
        status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
        shipped = delivered = returned = None
        if status in ("Shipped", "Complete", "Returned"):
            shipped = placed + timedelta(hours=rng.randint(4, 72))
        if shipped and status != "Shipped":
            delivered = shipped + timedelta(days=rng.randint(1, 5))
        if delivered and status == "Returned":
            returned = delivered + timedelta(days=rng.randint(1, 10))
        events = [_stamp(returned), _stamp(shipped), _stamp(delivered)]
        count = rng.choices([1, 2, 3, 4], [0.6, 0.25, 0.1, 0.05])[0]
        order_rows.append(
            [order_id, user_id, status, rng.choice("FM"), _stamp(placed), *events, count]
        )
        for _ in range(count):
            pid, retail = rng.choice(prices)
            item_status = status if rng.random() < 0.9 else rng.choice([s for s, _ in STATUSES])
            created = placed + timedelta(minutes=rng.randint(0, 3 * 24 * 60))  # often days later
            item_rows.append(
                [id_offset + len(item_rows) + 1, order_id, user_id, pid, rng.randint(1, 500_000),
                 item_status,
                 _stamp(created), _stamp(shipped), _stamp(delivered), _stamp(returned),
                 _price(retail)]
            )  # fmt: skip
    written = {}
    for dataset, name, rows in (
        ("thelook_products", "products.csv", product_rows),
        ("thelook_orders", "orders.csv", order_rows),
        ("thelook_order_items", "order_items.csv", item_rows),
    ):
        written[dataset] = out_dir / CONTRACTS[dataset].raw_folder / name
        _write(written[dataset], dataset, rows)
    return GeneratedFiles(
        written, {"thelook_products": products, "thelook_orders": orders,
                  "thelook_order_items": len(item_rows)}
    )  # fmt: skip
