"""How a table's definition follows its contract, for every engine: the properties every
dataset table has; columns the contract gained are
added (nullable: the rows already written read NULL), a column whose type changed is refused.

Delta can add a column with metadata alone; changing a column's type would mean rewriting every
file (or column mapping, which older readers cannot read), so it is never done behind the
operator's back. Engine-free: delta-rs and the Spark job both ask it, each naming the table's
types in its own words (``DELTA_TYPES`` maps the Delta log's to the contract's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ecom_lakehouse.contracts import Column

# Every dataset table keeps a change feed (the rows before and after each change): the KPI
# tables are refreshed from it for the days a load touched. Readers are unaffected (writer
# protocol 4, reader 1). Both engines create tables with it and set it where it is missing.
TABLE_PROPERTIES = {"delta.enableChangeDataFeed": "true"}
# The protocol delta-rs creates such a table with; Delta Spark 3.3, given the same property at
# creation, would choose table features (writer 7), which fewer writers support.
TABLE_PROTOCOL = {"delta.minReaderVersion": "1", "delta.minWriterVersion": "4"}

# The Delta log's primitive type names that differ from the contract's (Spark SQL) names.
DELTA_TYPES = {"long": "bigint", "integer": "int", "short": "smallint", "byte": "tinyint"}


class SchemaChangeRefused(Exception):
    """The contract changed a column's type, or added a required column to a table with rows."""


def columns_to_add(
    table: str, wanted: Sequence[Column], present: Mapping[str, str], has_rows: Callable[[], bool]
) -> list[Column]:
    """The ``wanted`` columns missing from a table whose columns have the ``present`` types
    (contract type names: ``bigint``, ``decimal(12,2)``...); raises ``SchemaChangeRefused``
    saying what to do when the two cannot be reconciled by adding columns."""
    changed = [
        f"{c.name} is {present[c.name]} in the table but {c.glue_type} in the contract"
        for c in wanted
        if c.name in present and present[c.name] != c.glue_type
    ]
    if changed:
        raise SchemaChangeRefused(
            f"{table}: {'; '.join(changed)}. A Delta table's column cannot change type in "
            "place: put the old type back in the contract, or add a column under a new name "
            "with the new type (the old one stays, NULL in new rows), or rebuild the table "
            "(move its folder aside and re-process the archived files)"
        )
    missing = [c for c in wanted if c.name not in present]
    required = [c.name for c in missing if c.required and c.derived is None]
    if required and has_rows():
        raise SchemaChangeRefused(
            f"{table}: the contract adds required column(s) {required}, which the rows already "
            "in the table do not have: add them with required=False"
        )
    return missing
