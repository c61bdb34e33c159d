"""The asset checks' latest outcomes, as the instance recorded them (``status`` shows them)."""

import dagster as dg

from ecom_lakehouse.runner.status import FAILED, NOT_RUN, PASSED, RUNNING


def latest_checks(instance: dg.DagsterInstance, defs: dg.Definitions) -> dict[str, dict[str, str]]:
    """Per table, each of its checks' latest outcome the instance recorded: passed, failed,
    pending (planned by a run not finished: queued or running) or not run (planned by a run
    that ended without evaluating it: a step failed or was skipped)."""
    outcomes: dict[str, dict[str, str]] = {}
    for key in defs.resolve_asset_graph().asset_check_keys:
        record = instance.get_latest_asset_check_evaluation_record(key)
        if record is not None:
            table = key.asset_key.to_user_string()
            status = str(record.status.value)  # PLANNED, SUCCEEDED or FAILED
            outcomes.setdefault(table, {})[key.name] = check_outcome(
                instance, status, record.run_id
            )
    return outcomes


def check_outcome(instance: dg.DagsterInstance, status: str, run_id: str) -> str:
    """A check's outcome from its latest record's status and the run that recorded it."""
    if status in EVALUATED:
        return EVALUATED[status]
    run = instance.get_run_by_id(run_id)  # planned: by a run still going, or one that ended
    return RUNNING if run is not None and not run.is_finished else NOT_RUN


EVALUATED = {"SUCCEEDED": PASSED, "FAILED": FAILED}
