"""Run status sensors that notify a person per file (through the notifier resource)."""

from collections.abc import Iterable

import dagster as dg

from ecom_lakehouse.defs.reports import report_for_run
from ecom_lakehouse.resources.notifications import Notifier

NOTIFICATIONS = (
    (
        "file_failure_notifier",
        dg.DagsterRunStatus.FAILURE,
        "Tells a person which file failed, in which asset, why, and where the run is.",
    ),
    (
        "file_success_notifier",
        dg.DagsterRunStatus.SUCCESS,
        "A summary per loaded file (rows read, loaded, rejected; failed checks).",
    ),
)


def notification_definitions(ingest: Iterable[dg.Definitions]) -> dg.Definitions:
    jobs = [job for defs in ingest for job in defs.jobs or []]
    sensors = []
    for name, status, description in NOTIFICATIONS:

        @dg.run_status_sensor(
            name=name,
            run_status=status,
            monitored_jobs=list(jobs),
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=description,
        )
        def notify(context: dg.RunStatusSensorContext, notifier: Notifier) -> None:
            notifier.publish(report_for_run(context.instance, context.dagster_run))

        sensors.append(notify)
    return dg.Definitions(sensors=sensors)
