"""A table's columns as the UI shows them (the ``dagster/column_schema`` metadata)."""

from collections.abc import Iterable

import dagster as dg

from ecom_lakehouse.contracts import Column


def column_schema(columns: Iterable[Column], key: tuple[str, ...]) -> dg.TableSchema:
    """A table's columns as the UI shows them (a one-column key is marked unique)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.type,
                description=c.description,
                constraints=dg.TableColumnConstraints(
                    nullable=not c.required, unique=key == (c.name,)
                ),
            )
            for c in columns
        ]
    )
