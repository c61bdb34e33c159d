"""``maintain``: the table maintenance job for some tables, in this process."""

from collections.abc import Sequence

import dagster as dg

from ecom_lakehouse.contracts import (
    TableSpec,
)
from ecom_lakehouse.defs.reports import (
    maintenance_lines,
)
from ecom_lakehouse.names import (
    MAINTENANCE_JOB,
    TRIGGER_TAG,
    maintenance_op,
)
from ecom_lakehouse.runner.reports import MaintenanceLine
from ecom_lakehouse.runner.session import QUIET


def maintain(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    specs: Sequence[TableSpec],
    *,
    retention_hours: int | None = None,
    verbose: bool = False,
) -> list[MaintenanceLine]:
    """The maintenance job, for the tables of ``specs``, in this process: a line per table."""
    ops = {maintenance_op(spec): {"config": {"retention_hours": retention_hours}} for spec in specs}
    run = defs.resolve_job_def(MAINTENANCE_JOB).execute_in_process(
        instance=instance,
        op_selection=list(ops),
        run_config={**({} if verbose else QUIET), "ops": ops},
        tags={TRIGGER_TAG: "cli"},
        raise_on_error=False,
    )
    return maintenance_lines(specs, run.all_events)
