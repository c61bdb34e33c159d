"""Synthetic input files in the seed formats, laid out like ``raw/`` (repeatable by seed).

``products/products.csv``; ``orders/orders_<month>.xlsx`` and
``order-items/order_items_<month>.xlsx`` with one sheet per day. Like the real files:
timestamps and dates stored as text, amounts that mix integers and decimals, an ``order_num``
that repeats, an empty ``days_since_prior_order`` for a customer's first order.
"""

from __future__ import annotations

import csv
import random
from datetime import date, datetime, timedelta
from pathlib import Path

from openpyxl import Workbook

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.generators import GeneratedFiles

DATASETS = ("products", "orders", "order_items")
DEPARTMENTS = ("Books", "Electronics", "Grocery", "Home", "Sports", "Toys")
WORDS = ("Store", "There", "Hand", "Tv", "Lamp", "River", "Blue", "Fast", "Chair", "Ocean")


def _xlsx(path: Path, columns: tuple[str, ...], sheets: dict[str, list[list[object]]]) -> None:
    workbook = Workbook(write_only=True)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(title=name)
        sheet.append(list(columns))
        for row in rows:
            sheet.append(row)
    workbook.save(path)


def _write_products(path: Path, rng: random.Random, products: int, id_offset: int) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CONTRACTS["products"].column_names)
        for pid in range(1, products + 1):
            writer.writerow(
                [
                    id_offset + pid,
                    rng.randint(1, 6),
                    rng.choice(DEPARTMENTS),
                    f"Product_{pid}_{rng.choice(WORDS)}",
                ]
            )


def generate(
    out_dir: Path,
    *,
    orders: int,
    products: int = 1000,
    days: int = 15,
    start: date = date(2025, 4, 1),
    seed: int = 0,
    first_order_id: int = 10000,
    id_offset: int = 0,
    bad_rows: int = 0,
) -> GeneratedFiles:
    """``id_offset`` is added to every key (products, orders, order lines); the first
    ``bad_rows`` order lines break a rule of the contract (a reordered flag of 2), as real
    files do: they are rejected with a reason, the rest loads."""
    rng = random.Random(seed)
    out_dir = Path(out_dir)
    folders = {name: out_dir / CONTRACTS[name].raw_folder for name in DATASETS}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)

    products_path = folders["products"] / "products.csv"
    _write_products(products_path, rng, products, id_offset)

    order_sheets: dict[str, list[list[object]]] = {}
    item_sheets: dict[str, list[list[object]]] = {}
    item_id = 0
    for n in range(orders):
        day = start + timedelta(days=n * days // max(orders, 1))
        sheet = day.isoformat()
        placed = datetime.combine(day, datetime.min.time()) + timedelta(
            minutes=rng.randrange(24 * 60)
        )
        ts = placed.isoformat(timespec="seconds")
        order_id = id_offset + first_order_id + n
        user_id = rng.randint(1000, 9999)
        amount: float = round(rng.uniform(5, 500), 2)
        if rng.random() < 0.1:
            amount = float(int(amount)) or 1.0
        order_sheets.setdefault(sheet, []).append(
            [
                rng.randint(1, 100),
                order_id,
                user_id,
                ts,
                int(amount) if amount.is_integer() else amount,
                sheet,
            ]
        )
        prior: object = rng.randint(0, 30) if rng.random() > 0.05 else None
        lines = item_sheets.setdefault(sheet, [])
        for position in range(1, rng.randint(1, 10) + 1):
            item_id += 1
            lines.append(
                [
                    id_offset + item_id,
                    order_id,
                    user_id,
                    prior,
                    id_offset + rng.randint(1, products),
                    position,
                    2 if item_id <= bad_rows else rng.randint(0, 1),  # 2: breaks reordered_is_flag
                    ts,
                    sheet,
                ]
            )

    suffix = start.strftime("%b_%Y").lower()
    orders_path = folders["orders"] / f"orders_{suffix}.xlsx"
    items_path = folders["order_items"] / f"order_items_{suffix}.xlsx"
    _xlsx(orders_path, CONTRACTS["orders"].column_names, order_sheets)
    _xlsx(items_path, CONTRACTS["order_items"].column_names, item_sheets)
    return GeneratedFiles(
        {"products": products_path, "orders": orders_path, "order_items": items_path},
        {"products": products, "orders": orders, "order_items": item_id},
    )
