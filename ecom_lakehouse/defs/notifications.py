"""Run status sensors that notify a person per file of a run (through the notifier resource):
a rejected file goes to the failure topic even when its run, which loaded the others, succeeded."""

from collections.abc import Iterable

import dagster as dg

from ecom_lakehouse.defs.reports import reports_for_run
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
        "Per file of a run that succeeded: a summary of a loaded file (rows read, loaded, "
        "rejected; failed checks), or a rejected file's reason (to the failure topic).",
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
            for report in reports_for_run(context.instance, context.dagster_run):
                notifier.publish(report)

        sensors.append(notify)
    return dg.Definitions(sensors=sensors)
