"""Run status sensors that notify a person per file (through the notifier resource)."""

from collections.abc import Sequence

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from ecom_lakehouse.defs.reports import report_for_run
from ecom_lakehouse.resources.notifications import NotifierResource

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


def build_notification_sensors(
    jobs: Sequence[UnresolvedAssetJobDefinition],
) -> list[dg.SensorDefinition]:
    sensors = []
    for name, status, description in NOTIFICATIONS:

        @dg.run_status_sensor(
            name=name,
            run_status=status,
            monitored_jobs=list(jobs),
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=description,
        )
        def notify(context: dg.RunStatusSensorContext, notifier: NotifierResource) -> None:
            notifier.publish(report_for_run(context.instance, context.dagster_run))

        sensors.append(notify)
    return list(sensors)
