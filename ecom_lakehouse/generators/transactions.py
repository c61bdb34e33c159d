"""Synthetic sales transactions, as the stream's generator writes them: one JSON object per file
(several as JSON lines), under ``transactions/YYYY/MM/DD/HH/`` of ``raw/``.

Realistic enough to query: each category has its own products at their own prices, a few
customers buy often and most rarely (Zipf-like), and most baskets hold one unit. Everything is
drawn from a seed, so a tick written twice writes the same files.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from ecom_lakehouse.contracts.transactions import TRANSACTIONS
from ecom_lakehouse.generators import GeneratedFiles

# category -> (its products, the range of their unit prices)
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[float, float]]] = {
    "Electronics": (
        ("Wireless Earbuds", "USB-C Charger", "Smart Watch", "Bluetooth Speaker", "Tablet"),
        (19.0, 499.0),
    ),
    "Books": (("Cookbook", "Crime Novel", "Travel Guide", "Children's Atlas"), (6.0, 45.0)),
    "Home & Kitchen": (
        ("Coffee Grinder", "Chef's Knife", "Linen Towels", "Cast Iron Pan", "Desk Lamp"),
        (12.0, 180.0),
    ),
    "Clothing": (("Rain Jacket", "Wool Socks", "Denim Jeans", "Linen Shirt"), (9.0, 160.0)),
    "Sports": (("Yoga Mat", "Running Shoes", "Water Bottle", "Tennis Balls"), (8.0, 140.0)),
    "Beauty": (("Face Serum", "Shampoo", "Sunscreen", "Lip Balm"), (4.0, 70.0)),
    "Toys": (("Building Blocks", "Puzzle 1000", "Plush Bear", "Card Game"), (7.0, 90.0)),
}
CATEGORY_WEIGHTS = (18, 12, 16, 20, 12, 14, 8)
QUANTITIES, QUANTITY_WEIGHTS = (1, 2, 3, 4, 5), (62, 22, 9, 4, 3)
CUSTOMERS = 2_000


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    category: str
    price: Decimal


def _cents(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _catalogue() -> list[tuple[str, list[Product]]]:
    """The products of each category, with fixed prices (the same in every run)."""
    out = []
    for c, (category, (names, (low, high))) in enumerate(CATEGORIES.items()):
        products = []
        for p, name in enumerate(names):
            price = random.Random(f"{category}/{name}").uniform(low, high)
            products.append(Product(f"P{c + 1:02}{p + 1:03}", name, category, _cents(price)))
        out.append((category, products))
    return out


CATALOGUE = _catalogue()
_CUSTOMER_WEIGHTS = [1 / (rank**1.1) for rank in range(1, CUSTOMERS + 1)]


def transaction(
    rng: random.Random, moment: datetime, ids: random.Random | None = None
) -> dict[str, object]:
    """One transaction at ``moment`` (UTC), the way the stream's files carry it (its id drawn
    from ``ids``, else from ``rng``)."""
    _, products = rng.choices(CATALOGUE, weights=CATEGORY_WEIGHTS)[0]
    product = rng.choice(products)
    customer = rng.choices(range(1, CUSTOMERS + 1), weights=_CUSTOMER_WEIGHTS)[0]
    quantity = rng.choices(QUANTITIES, weights=QUANTITY_WEIGHTS)[0]
    return {
        "transaction_id": str(uuid.UUID(int=(ids or rng).getrandbits(128), version=4)),
        "timestamp": moment.astimezone(UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "customer_id": f"C{customer:05}",
        "product_id": product.product_id,
        "product_name": product.name,
        "category": product.category,
        "quantity": quantity,
        "price": float(product.price),
        "total_amount": float(product.price * quantity),
    }


def file_key(first: dict[str, object]) -> str:
    """Where a file goes under ``raw/``: the UTC hour of its first transaction, then its id."""
    moment = datetime.fromisoformat(str(first["timestamp"]).replace("Z", "+00:00"))
    return f"{TRANSACTIONS.raw_folder}/{moment:%Y/%m/%d/%H}/{first['transaction_id']}.json"


def encode(transactions: list[dict[str, object]]) -> bytes:
    """One object for a single transaction (as the generator writes it), else JSON lines."""
    if len(transactions) == 1:
        return json.dumps(transactions[0]).encode()
    return "".join(json.dumps(t) + "\n" for t in transactions).encode()


def tick_files(
    until: datetime, *, files: int, per_file: int, interval: timedelta = timedelta(minutes=5)
) -> Iterator[tuple[str, bytes]]:
    """The files of one tick of the schedule at ``until``: transactions at moments in the
    ``interval`` before it, as (key under raw/, content). Seeded by ``until``: a tick run twice
    writes the same files."""
    rng = random.Random(f"transactions@{until.isoformat()}")
    for _ in range(files):
        moments = sorted(until - interval * rng.random() for _ in range(per_file))
        batch = [transaction(rng, m) for m in moments]
        yield file_key(batch[0]), encode(batch)


def generate(
    out_dir: Path,
    *,
    orders: int,
    days: int = 15,
    start: date = date(2025, 4, 1),
    seed: int = 0,
    per_file: int = 1,
    id_offset: int = 0,
) -> GeneratedFiles:
    """``orders`` transactions spread over ``days`` from ``start``, ``per_file`` to a file, laid
    out like ``raw/`` under ``out_dir``. The ids are random UUIDs: a non-zero ``id_offset``
    draws them from a sequence of its own (another offset, other ids)."""
    rng = random.Random(seed)
    ids = random.Random(f"{seed}/{id_offset}") if id_offset else rng
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    moments = sorted(first + timedelta(seconds=rng.randrange(days * 86_400)) for _ in range(orders))
    out_dir = Path(out_dir)
    for i in range(0, orders, per_file):
        batch = [transaction(rng, m, ids) for m in moments[i : i + per_file]]
        path = out_dir / file_key(batch[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(batch))
    folder = out_dir / TRANSACTIONS.raw_folder
    return GeneratedFiles({TRANSACTIONS.name: folder}, {TRANSACTIONS.name: orders})
