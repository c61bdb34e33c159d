"""Dataset contracts: every fact about a dataset, declared once, as data.

Adding a dataset means adding a contract to its family's module and to ``CONTRACTS``.
"""

from ecom_lakehouse.contracts.ecommerce import ORDER_ITEMS, ORDERS, PRODUCTS
from ecom_lakehouse.contracts.model import (
    AUDIT_COLUMNS,
    LOADED_AT,
    LOGICAL_TYPES,
    SOURCE_FILE,
    SOURCE_VERSION,
    Column,
    DatasetContract,
    ForeignKey,
    Rule,
)

__all__ = [
    "AUDIT_COLUMNS",
    "CONTRACTS",
    "LOADED_AT",
    "LOGICAL_TYPES",
    "SOURCE_FILE",
    "SOURCE_VERSION",
    "Column",
    "DatasetContract",
    "ForeignKey",
    "Rule",
    "contract_for_raw_folder",
    "load_rank",
]

# Declaration order is load order: a dataset comes after the datasets its foreign keys name.
CONTRACTS: dict[str, DatasetContract] = {c.name: c for c in (PRODUCTS, ORDERS, ORDER_ITEMS)}


def contract_for_raw_folder(folder: str) -> DatasetContract | None:
    return next((c for c in CONTRACTS.values() if c.raw_folder == folder), None)


def load_rank(dataset: str) -> int:
    return list(CONTRACTS).index(dataset)
