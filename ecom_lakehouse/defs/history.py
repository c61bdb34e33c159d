"""``load_history`` in the asset graph: the table every ingest run writes a row per upload
attempt to (``core/tables/history.py``), with its catalog entry; and how a step records into it
without ever failing because of it."""

from collections.abc import Callable

import dagster as dg
from deltalake.exceptions import DeltaError

from ecom_lakehouse.contracts import LOAD_HISTORY
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.tables.delta import TableBusy
from ecom_lakehouse.defs.schema import column_schema
from ecom_lakehouse.names import HISTORY_GROUP, table_key

LOAD_HISTORY_KEY = table_key(LOAD_HISTORY)


def history_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            dg.AssetSpec(
                LOAD_HISTORY_KEY,
                group_name=HISTORY_GROUP,
                kinds={"deltalake"},
                description=(
                    f"{LOAD_HISTORY.description} Delta table at "
                    f"{layout.table_path(LOAD_HISTORY.name)}, written by every ingest run."
                ),
                metadata={
                    "dagster/column_schema": column_schema(LOAD_HISTORY.table_columns, ()),
                    "dagster/table_name": LOAD_HISTORY.name,
                },
            )
        ]
    )


def record_history(context: dg.AssetExecutionContext, what: str, write: Callable[[], int]) -> None:
    """Run ``write`` (a history write returning how many rows it recorded): the history never
    fails a load. Should it not commit now, the loads it misses are recorded by the dataset's
    next run, from the table's log; the run's other attempts are said in its logs."""
    try:
        recorded = write()
    except (TableBusy, DeltaError, OSError) as error:
        context.log.warning(
            f"{LOAD_HISTORY.name}: {what} not recorded now ({str(error).strip()[:300]}); the "
            "dataset's next run records its loads from the table's log"
        )
        return
    if recorded:
        context.log_event(
            dg.AssetMaterialization(
                LOAD_HISTORY_KEY, metadata={"attempts_recorded": recorded, "for": what}
            )
        )
