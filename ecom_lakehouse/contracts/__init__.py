"""Dataset contracts: every fact about a dataset, declared once, as data.

Adding a dataset means adding a contract to its family's module and to ``CONTRACTS``.
"""

from ecom_lakehouse.contracts.ecommerce import ORDER_ITEMS, ORDERS, PRODUCTS
from ecom_lakehouse.contracts.kpis import KPIS
from ecom_lakehouse.contracts.model import (
    AUDIT_COLUMNS,
    COMPUTED_AT,
    LOADED_AT,
    LOGICAL_TYPES,
    RESCUED_DATA,
    SOURCE_FILE,
    SOURCE_VERSION,
    Column,
    DatasetContract,
    ForeignKey,
    KpiCheck,
    KpiInput,
    KpiTable,
    Maintenance,
    Rule,
    TableSpec,
)
from ecom_lakehouse.contracts.thelook import THELOOK_ORDER_ITEMS, THELOOK_ORDERS, THELOOK_PRODUCTS
from ecom_lakehouse.contracts.transactions import TRANSACTIONS

__all__ = [
    "AUDIT_COLUMNS",
    "COMPUTED_AT",
    "CONTRACTS",
    "KPIS",
    "LOADED_AT",
    "LOGICAL_TYPES",
    "RESCUED_DATA",
    "SOURCE_FILE",
    "SOURCE_VERSION",
    "Column",
    "DatasetContract",
    "ForeignKey",
    "KpiCheck",
    "KpiInput",
    "KpiTable",
    "Maintenance",
    "Rule",
    "TableSpec",
    "contract_for_raw_folder",
    "load_rank",
]

# Declaration order is load order: a dataset comes after the datasets its foreign keys name.
CONTRACTS: dict[str, DatasetContract] = {
    c.name: c
    for c in (
        PRODUCTS,
        ORDERS,
        ORDER_ITEMS,
        THELOOK_PRODUCTS,
        THELOOK_ORDERS,
        THELOOK_ORDER_ITEMS,
        TRANSACTIONS,
    )
}


def contract_for_raw_folder(folder: str) -> DatasetContract | None:
    return next((c for c in CONTRACTS.values() if c.raw_folder == folder), None)


def load_rank(dataset: str) -> int:
    return list(CONTRACTS).index(dataset)


def table_specs() -> list[TableSpec]:
    """Every table the lakehouse writes: the datasets', then the KPIs'."""
    return [*CONTRACTS.values(), *KPIS.values()]
