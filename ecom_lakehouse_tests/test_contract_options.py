"""Every option of the contract model, alone and combined, through the real definitions.

A table of contracts (one key column or several; partitioned by a column, by a derived one, or
not at all; with or without freshness, rules, a sequence, foreign keys; only optional columns
besides the key) builds the definitions with each registered, loads a file, re-delivers it with
changed values for the same keys (updated, no new rows), and finds one row per key. Contracts
that cannot work fail at import with one line naming the contract and the field."""

from dataclasses import dataclass
from datetime import timedelta

import pytest

from ecom_lakehouse.contracts import (
    Column,
    ContractError,
    DatasetContract,
    ForeignKey,
    Rule,
    register,
    registered,
)
from ecom_lakehouse.core.sql.checks import table_checks
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse_tests.conftest import land, query
from ecom_lakehouse_tests.files import csv_bytes

PARENT = DatasetContract(
    name="opt_parent",
    raw_folder="opt-parent",
    description="A parent keyed by two columns.",
    columns=(Column("region", "string"), Column("shop", "bigint"), Column("label", "string")),
    primary_key=("region", "shop"),
)


@dataclass(frozen=True)
class Options:
    key: tuple[str, ...]
    partition: str | None = None  # "day", "derived_day" or None
    freshness: bool = False
    rules: bool = False
    sequence: bool = False
    foreign_key: bool = False
    optional_only: bool = False


CASES = [
    Options(key=("id",)),
    Options(key=("id",), partition="day", freshness=True, rules=True, sequence=True),
    Options(key=("region", "shop", "line"), foreign_key=True),
    Options(key=("region", "shop", "line"), partition="derived_day", sequence=True),
    Options(key=("id",), optional_only=True),
    Options(key=("line", "id"), partition="day", rules=True, foreign_key=True),
    Options(key=("id",), partition="derived_day", freshness=True, optional_only=True),
]


def contract_of(number: int, options: Options) -> DatasetContract:
    required = not options.optional_only
    key_columns = tuple(Column(k, "string" if k == "region" else "bigint") for k in options.key)
    others = [
        Column("qty", "int", required=required),
        Column("placed_at", "timestamp", required=required),
        Column("day", "date", required=required and options.partition == "day"),
    ]
    if "region" not in options.key:
        others.append(Column("region", "string", required=False))
    if "shop" not in options.key:
        others.append(Column("shop", "bigint", required=False))
    if options.partition == "derived_day":
        others.append(Column("derived_day", "date", derived="CAST(placed_at AS DATE)"))
    partition = options.partition
    return DatasetContract(
        name=f"opt_{number}",
        raw_folder=f"opt-{number}",
        description=f"Generated contract {number}: {options}.",
        columns=(*key_columns, *others),
        primary_key=options.key if len(options.key) > 1 else options.key[0],
        partition_by=partition,
        freshness=timedelta(hours=1) if options.freshness else None,
        rules=(Rule("qty_positive", "qty > 0"),) if options.rules else (),
        sequence_by=("placed_at",) if options.sequence else (),
        foreign_keys=(ForeignKey(("region", "shop"), PARENT.name, ("region", "shop")),)
        if options.foreign_key
        else (),
    )


def rows_for(contract: DatasetContract, qty: int) -> bytes:
    header = list(contract.source_column_names)
    values = {
        "id": lambda i: i,
        "line": lambda i: i % 3 + 1,
        "region": lambda i: "north",
        "shop": lambda i: 1,
        "qty": lambda i: qty,
        "placed_at": lambda i: f"2025-04-0{1 + i % 3}T10:00:00",
        "day": lambda i: f"2025-04-0{1 + i % 3}",
    }
    return csv_bytes([header, *([values[c](i) for c in header] for i in range(6))])


@pytest.mark.parametrize("number", range(len(CASES)), ids=lambda n: str(CASES[n]))
def test_each_combination_of_options_loads_updates_and_keeps_one_row_per_key(
    number, lake_dir, instance
):
    contract = contract_of(number, CASES[number])
    family = (PARENT, contract) if CASES[number].foreign_key else (contract,)
    with registered(family):
        defs = build_defs({"LAKEHOUSE_URI": str(lake_dir)})
        if CASES[number].foreign_key:
            parent = csv_bytes([list(PARENT.column_names), ["north", 1, "the shop"]])
            land(lake_dir, PARENT.raw_folder, parent, "p.csv")
        land(lake_dir, contract.raw_folder, rows_for(contract, qty=2), "a.csv")
        first = ingest(instance, defs)
        land(lake_dir, contract.raw_folder, rows_for(contract, qty=5), "a.csv")  # new upload
        second = ingest(instance, defs)
        lake = defs.resources["lake"].lake()
        keys = ", ".join(contract.key_columns)
        counted = query(lake, f"SELECT count(*), count(DISTINCT ({keys})) FROM {contract.name}")
        quantities = query(lake, f"SELECT DISTINCT qty FROM {contract.name}")
    assert [r.status for r in first] == ["OK"] * len(family), [r.summary() for r in first]
    (again,) = second
    assert again.status == "OK", again.summary()
    table = again.metadata[contract.name]
    expected = len({tuple(r) for r in distinct_keys(contract)})
    assert (table["rows_inserted"], table["rows_updated"]) == (0, expected)
    assert counted == [(expected, expected)]
    assert quantities == [(5,)]
    assert {c.name for c in table_checks(contract)} >= {
        f"{'_'.join(contract.key_columns)}_unique_and_not_null"
    }


def distinct_keys(contract: DatasetContract) -> list[tuple]:
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(rows_for(contract, 1).decode())))
    return sorted({tuple(r[k] for k in contract.key_columns) for r in rows})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"primary_key": "nope"}, "contract 'bad': primary_key names unknown column(s) ['nope']"),
        ({"primary_key": ("id", "note")}, "contract 'bad': primary_key: note must be required"),
        ({"primary_key": "day_of"}, "contract 'bad': primary_key: day_of is a derived column"),
        ({"partition_by": "when"}, "contract 'bad': partition_by names unknown column(s) ['when']"),
        ({"sequence_by": ("later",)}, "contract 'bad': sequence_by names unknown column(s)"),
        ({"formats": ("xml",)}, "contract 'bad': formats: ['xml']"),
        ({"freshness": timedelta(0)}, "contract 'bad': freshness must be positive"),
        ({"columns": (Column("id", "bigint"), Column("x", "money"))},
         "contract 'bad': columns: x has unknown type 'money'"),
        ({"foreign_keys": (ForeignKey(("id", "note"), "orders", "order_id"),)},
         "contract 'bad': foreign key id_note_references_orders: 2 column(s) reference 1"),
        ({"raw_folder": "a/b"}, "contract 'bad': raw_folder must be one folder name"),
    ],
)  # fmt: skip
def test_a_contract_that_cannot_work_fails_in_one_line_naming_it_and_the_field(change, message):
    fields = {
        "name": "bad",
        "raw_folder": "bad",
        "description": "",
        "columns": (
            Column("id", "bigint"),
            Column("note", "string", required=False),
            Column("placed_at", "timestamp"),
            Column("day_of", "date", derived="CAST(placed_at AS DATE)"),
        ),
        "primary_key": "id",
    } | change
    with pytest.raises(ContractError) as raised:
        DatasetContract(**fields)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("contract", "message"),
    [
        (DatasetContract("orders", "elsewhere", "", (Column("id", "bigint"),), "id"),
         "contract 'orders': name: another table has it"),
        (DatasetContract("mine", "orders", "", (Column("id", "bigint"),), "id"),
         "contract 'mine': raw_folder 'orders' is orders's"),
        (DatasetContract("mine", "mine", "", (Column("id", "bigint"),), "id",
                         foreign_keys=(ForeignKey("id", "nowhere", "id"),)),
         "contract 'mine': foreign key id_references_nowhere: no dataset 'nowhere'"),
        (DatasetContract("mine", "mine", "", (Column("id", "bigint"),), "id",
                         foreign_keys=(ForeignKey("id", "orders", "no_such"),)),
         "contract 'mine': foreign key id_references_orders: orders has no column(s)"),
    ],
)  # fmt: skip
def test_a_family_that_cannot_join_the_others_is_refused_in_one_line(contract, message):
    with pytest.raises(ContractError) as raised:
        register([contract])
    assert str(raised.value).startswith(message)
