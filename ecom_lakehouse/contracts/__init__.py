"""Dataset contracts: every fact about a dataset, declared once, as data.

A dataset family is a module here with its contracts in ``DATASETS`` (in load order); adding a
family is adding its module and its line in ``FAMILIES``. Adding a dataset to a family is
adding its contract to that module's ``DATASETS``.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from ecom_lakehouse.contracts import ecommerce, thelook, transactions
from ecom_lakehouse.contracts.history import LOAD_HISTORY
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
    ContractError,
    DatasetContract,
    ForeignKey,
    KpiCheck,
    KpiInput,
    KpiTable,
    Maintenance,
    Rule,
    TableSpec,
)

__all__ = [
    "AUDIT_COLUMNS",
    "COMPUTED_AT",
    "CONTRACTS",
    "KPIS",
    "LOADED_AT",
    "LOAD_HISTORY",
    "LOGICAL_TYPES",
    "RESCUED_DATA",
    "SOURCE_FILE",
    "SOURCE_VERSION",
    "Column",
    "ContractError",
    "DatasetContract",
    "ForeignKey",
    "KpiCheck",
    "KpiInput",
    "KpiTable",
    "Maintenance",
    "Rule",
    "TableSpec",
    "register",
    "registered",
]

# Every dataset family, a module each; their datasets load in this order.
FAMILIES = (ecommerce, thelook, transactions)

CONTRACTS: dict[str, DatasetContract] = {}


def register(datasets: Iterable[DatasetContract]) -> None:
    """Add a family's datasets to ``CONTRACTS``, in order, each checked against the datasets
    before it: a name and a raw folder of its own, foreign keys to a dataset already there
    (one line naming the contract and the field, else)."""
    for contract in datasets:
        for problem in _registry_problems(contract):
            raise ContractError(f"contract {contract.name!r}: {problem}")
        CONTRACTS[contract.name] = contract


def _registry_problems(contract: DatasetContract) -> Iterator[str]:
    if contract.name in CONTRACTS or contract.name in KPIS:
        yield "name: another table has it"
    same_folder = [c.name for c in CONTRACTS.values() if c.raw_folder == contract.raw_folder]
    if same_folder:
        yield f"raw_folder {contract.raw_folder!r} is {same_folder[0]}'s"
    for fk in contract.foreign_keys:
        referenced = CONTRACTS.get(fk.references) if fk.references != contract.name else contract
        if referenced is None:
            yield f"foreign key {fk.name}: no dataset {fk.references!r} before this one"
            continue
        unknown = [c for c in fk.referenced_names if c not in referenced.column_names]
        if unknown:
            yield f"foreign key {fk.name}: {fk.references} has no column(s) {unknown}"


@contextmanager
def registered(datasets: Iterable[DatasetContract]) -> Iterator[None]:
    """A family registered for a while (a test's own family), then taken out again."""
    before = dict(CONTRACTS)
    try:
        register(datasets)
        yield
    finally:
        CONTRACTS.clear()
        CONTRACTS.update(before)


for _family in FAMILIES:
    register(_family.DATASETS)


def table_specs() -> list[TableSpec]:
    """Every table the lakehouse writes: the datasets', the KPIs', then its load history."""
    return [*CONTRACTS.values(), *KPIS.values(), LOAD_HISTORY]
